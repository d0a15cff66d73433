"""The quorum arithmetic the consistency matrix and the node-loss test are judged by."""

from __future__ import annotations

import pytest

from loadtest.quorum import available, never_stale, replicas

LAB = {"Yangon": 2, "Mandalay": 2, "Naypyitaw": 2}
EVERY = replicas(LAB)
YANGON_NODE_DOWN = EVERY - {("Yangon", 1)}
MANDALAY_DOWN = {r for r in EVERY if r[0] != "Mandalay"}


@pytest.mark.parametrize(
    ("alive", "served"),
    [
        (EVERY, {"ANY", "ONE", "LOCAL_ONE", "LOCAL_QUORUM", "QUORUM", "EACH_QUORUM", "ALL"}),
        # The node-loss test's finding: 5 of 6 up, 1 of 2 in Yangon.
        (YANGON_NODE_DOWN, {"ANY", "ONE", "LOCAL_ONE", "QUORUM"}),
        # A remote DC down: 4 of 6 is still a quorum; each-quorum and all are not.
        (MANDALAY_DOWN, {"ANY", "ONE", "LOCAL_ONE", "LOCAL_QUORUM", "QUORUM"}),
    ],
)
def test_levels_a_yangon_coordinator_can_serve(alive: set, served: set) -> None:
    levels = ("ANY", "ONE", "LOCAL_ONE", "LOCAL_QUORUM", "QUORUM", "EACH_QUORUM", "ALL")
    assert {level for level in levels if available(level, alive, LAB, "Yangon")} == served


def test_a_region_keyspace_has_no_quorum_without_both_home_replicas() -> None:
    region = {"Yangon": 2}
    alive = replicas(region) - {("Yangon", 1)}
    assert not available("QUORUM", alive, region, "Yangon")
    assert available("LOCAL_ONE", alive, region, "Yangon")


@pytest.mark.parametrize(
    ("write", "read", "fresh"),
    [
        ("QUORUM", "QUORUM", True),  # 4 + 4 > 6
        ("ALL", "ONE", True),
        ("ONE", "ALL", True),
        ("EACH_QUORUM", "LOCAL_ONE", True),  # with 2 per DC, each quorum is every replica
        ("LOCAL_QUORUM", "LOCAL_QUORUM", False),  # another DC's replicas
        ("QUORUM", "LOCAL_QUORUM", False),  # 4 of 6 may leave out Naypyitaw
        ("LOCAL_ONE", "QUORUM", False),
        ("ANY", "ALL", False),  # only a hint may hold it
    ],
)
def test_which_pairs_never_read_stale_across_dcs(write: str, read: str, fresh: bool) -> None:
    assert never_stale(write, read, LAB, write_dc="Yangon", read_dc="Naypyitaw") is fresh


def test_a_dc_down_makes_a_quorum_write_reach_every_live_replica() -> None:
    # 4 of the 4 live replicas: a local read in Naypyitaw then always sees it.
    assert never_stale("QUORUM", "LOCAL_ONE", LAB, "Yangon", "Naypyitaw", alive=MANDALAY_DOWN)
    assert not never_stale("QUORUM", "LOCAL_ONE", LAB, "Yangon", "Naypyitaw")


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown consistency level 'TWO'"):
        available("TWO", EVERY, LAB, "Yangon")
