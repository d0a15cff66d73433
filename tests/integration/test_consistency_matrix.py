"""The consistency-level matrix's healthy row on the lab, a few ops per cell: every write x
read level served, and no stale read where the quorum arithmetic forbids one. The node-down
and DC-down rows run with `./lab consistency` (loadtest/results/*-consistency.md); the
node-loss test covers the write levels with a node down."""

from __future__ import annotations

from loadtest import consistency_matrix
from loadtest.targets import LAB_INVENTORY, from_inventory

from .conftest import FIGURES
from .lab import Inventory


def test_healthy_cells_match_the_quorum_arithmetic(lab: Inventory) -> None:
    cells = consistency_matrix.run(from_inventory(LAB_INVENTORY), LAB_INVENTORY, ["healthy"], ops=3)
    stale = {f"{c.write}/{c.read}": c.stale for c in cells if c.stale}
    FIGURES["consistency matrix, healthy, 3 ops per cell: stale reads by write/read level"] = stale or "none"
    assert len(cells) == 35
    assert [c for c in cells if c.verdict != "ok"] == []
