"""A whole Cassandra DC down: its region keeps selling (docs/data-model.md, "Failover").

`cassandra` is stopped on both Yangon nodes. The Yangon API's statements then find no
node in their DC, and run in the next DC that holds replicas of their keyspace: Mandalay,
the standby of checkout_yangon and a full replica of the shared keyspace. Checkouts
through the Yangon API succeed, each counted in checkout_cassandra_dc_failovers_total,
and /readyz stays ready. The nodes start again one at a time (UN, CQL port), whatever
happened; then every sale is stored exactly once in every DC, Yangon's included once
the other DCs replayed their hints.

About a minute. `./lab chaos --scenario dc-down` does the same under 50 checkout ops/s
with the full audit (docs/chaos.md)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cassandra.cluster import Cluster

from loadtest.raw_cassandra import connect

from .conftest import FIGURES
from .lab import (
    API_PORT,
    SHARED_KEYSPACE,
    Inventory,
    SaleKey,
    checkout,
    http,
    metric_total,
    rows_of_invoice,
    ssh,
    wait_back,
    wait_status,
)

DC = "Yangon"
CHECKOUTS = 6
BACK_WITHIN_S = 150.0
# Hints are replayed once the returning nodes are seen up: seconds, here a bound.
STORED_WITHIN_S = 120.0
# The API's driver retries a down node at most 10 s apart (its reconnection policy).
HOME_WITHIN_S = 30.0


@dataclass
class DcOutage:
    nodes: list[str]  # the DC's addresses
    peer: str  # a node of another DC, which watches them
    began: float
    back: bool = False

    def restore(self) -> None:
        """Start the DC's nodes again, one at a time, each UN with its CQL port open; once."""
        if self.back:
            return
        for node in self.nodes:
            started = ssh(node, "systemctl start cassandra", timeout_s=120)
            assert started.returncode == 0, started.stderr
            wait_back(self.peer, node, BACK_WITHIN_S)
        self.back = True
        FIGURES[f"{DC} DC down for (s)"] = round(time.perf_counter() - self.began)


@pytest.fixture(scope="module")
def outage(lab: Inventory) -> Iterator[DcOutage]:
    dcs = lab.cassandra_by_dc()
    peer = next(address for dc, addresses in sorted(dcs.items()) if dc != DC for address in addresses)
    # Only from a healthy DC: a node already down would come back by this module's hand.
    for node in dcs[DC]:
        wait_status(peer, node, "UN", 30)
    current = DcOutage(dcs[DC], peer, time.perf_counter())
    try:
        for node in current.nodes:
            stopped = ssh(node, "systemctl stop cassandra", timeout_s=120)
            assert stopped.returncode == 0, stopped.stderr
        for node in current.nodes:
            wait_status(peer, node, "DN", 60)
        yield current
    finally:
        current.restore()


def _failovers(api: str) -> float:
    return metric_total(api, API_PORT, "checkout_cassandra_dc_failovers_total")


def _stored_once_everywhere(lab: Inventory, sales: list[SaleKey]) -> dict[str, int]:
    """Rows of each sale per DC, polled until every DC holds each sale once (or the bound)."""
    clusters: list[Cluster] = []
    try:
        sessions: dict[str, Any] = {}
        for dc, addresses in lab.cassandra_by_dc().items():
            clusters.append(connect(dc, addresses, "LOCAL_QUORUM"))
            sessions[dc] = clusters[-1].connect(SHARED_KEYSPACE)
        deadline = time.perf_counter() + STORED_WITHIN_S
        while True:
            found = {dc: [len(rows_of_invoice(session, sale)) for sale in sales] for dc, session in sessions.items()}
            if all(counts == [1] * len(sales) for counts in found.values()) or time.perf_counter() > deadline:
                return {dc: sum(counts) for dc, counts in found.items()} | {
                    f"{dc} twice": sum(c > 1 for c in counts) for dc, counts in found.items()
                }
            time.sleep(2)
    finally:
        for cluster in clusters:
            cluster.shutdown()


def _home_again(api: str, branch: str) -> float:
    """Seconds until a checkout through the API runs no statement in another DC."""
    returned = time.perf_counter()
    while True:
        before = _failovers(api)
        _, _, reply = checkout(api, branch)
        assert reply.status == 201, f"checkout after {DC} returned: HTTP {reply.status} {reply.body}"
        waited = time.perf_counter() - returned
        if _failovers(api) == before:
            return round(waited, 1)
        assert waited < HOME_WITHIN_S, f"the {DC} API still runs statements in another DC {waited:.0f} s after"
        time.sleep(1)


def test_the_region_keeps_selling_while_its_dc_is_down(lab: Inventory, outage: DcOutage) -> None:
    api = lab.address(lab.app_host_of(DC))
    branch = lab.branch_of(DC)
    before = _failovers(api)
    ready = http(api, "GET", "/readyz")
    assert ready.status == 200, f"/readyz with the {DC} DC down: HTTP {ready.status} {ready.body}"
    sales, latencies = [], []
    for _ in range(CHECKOUTS):
        _, _, reply = checkout(api, branch)
        assert reply.status == 201, f"checkout with the {DC} DC down: HTTP {reply.status} {reply.body}"
        sales.append(SaleKey.of(reply.body))
        latencies.append(reply.elapsed_s * 1000)
    failed_over = _failovers(api) - before
    FIGURES[f"{CHECKOUTS} checkouts on {DC}'s API with its DC down: max (ms) / statements failed over"] = (
        f"{max(latencies):.0f} / {failed_over:.0f}"
    )
    assert failed_over > 0, f"the {DC} API sold with its DC down without running a statement elsewhere?"

    outage.restore()
    FIGURES[f"{DC}'s API selling in its own DC again, s after the DC returned"] = _home_again(api, branch)
    stored = _stored_once_everywhere(lab, sales)
    FIGURES[f"the {CHECKOUTS} sales in each DC after {DC} returned"] = stored
    assert stored == {dc: CHECKOUTS for dc in lab.cassandra_by_dc()} | {
        f"{dc} twice": 0 for dc in lab.cassandra_by_dc()
    }
