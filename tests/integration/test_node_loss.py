"""Losing a Cassandra node: checkouts and replayed sales keep being stored, exactly once.

One outage window for the whole module: `cassandra` is stopped on cass-a2 (Yangon, so the
Yangon DC keeps one of its two replicas), the tests run, and the node is started again and
waited for (UN in `nodetool status` and its CQL port) whatever happened.

With RF 2 per DC, LOCAL_QUORUM in Yangon needs both replicas, so the Yangon API and
consumer can only keep going by falling back to CHECKOUT_CASSANDRA_FALLBACK_CONSISTENCY
(LOCAL_ONE); the other DCs write at LOCAL_QUORUM and leave hints for cass-a2. Sales are
in the shared keyspace (every DC); carts and stock in checkout_yangon, 2 replicas in
Yangon and a standby in Mandalay, where QUORUM (2 of 3) holds and LOCAL_QUORUM does not.

Someone hears of it: CassandraNodeDown reaches the lab's alert receiver (Prometheus ->
Alertmanager -> webhook) during the outage, and its resolved notification after it.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cassandra import ConsistencyLevel, Unavailable
from cassandra.query import SimpleStatement
from checkout.dataset import parse_lines
from checkout.domain import STORE_TZ, region_replication
from checkout.events import stored_lines
from checkout.idempotency import invoice_id_for

from loadtest.consistency_matrix import session_on
from loadtest.db_profile import derived_factors
from loadtest.quorum import WRITE_LEVELS, available, replicas

from .conftest import FIGURES
from .lab import (
    API_PORT,
    DATASET,
    SALE_WHERE,
    SHARED_KEYSPACE,
    AlertReceiver,
    Inventory,
    SaleKey,
    alert_receiver,
    http,
    metric_total,
    ssh,
    status_line,
    status_of,
    wait_back,
    wait_status,
)

DOWN_NODE = "cass-a2"
PEER_NODE = "cass-a1"
CHECKOUTS = 16
REPLAY_ROWS = 60
STORED_WITHIN_S = 30.0
BACK_WITHIN_S = 150.0
HINTS_WITHIN_S = 120.0
# roles/cassandra: cassandra_data_dir (/var/lib/cassandra) + /hints.
HINTS_DIR = "/var/lib/cassandra/hints"
# Marks this module's checkouts among whatever else the lab sells meanwhile (a load test):
# the rating is valid (0..10) but outside the dataset's 4..10.
MARKER_RATING = "0.7"


@dataclass
class Outage:
    down: str
    peer: str
    down_id: str  # its host ID
    others: list[str]  # every other Cassandra node: the coordinators that keep hints
    began: float
    notifications_before: int = 0
    back: bool = False
    back_at: float = 0.0

    def restore(self) -> None:
        """Start the node again and wait for it (UN, CQL open); once, whoever asks first."""
        if self.back:
            return
        ssh(self.down, "systemctl start cassandra", timeout_s=120)
        waited = wait_back(self.peer, self.down, BACK_WITHIN_S)
        self.back, self.back_at = True, time.perf_counter()
        FIGURES[f"{DOWN_NODE} outage: down for / UN again after start (s)"] = (
            f"{time.perf_counter() - self.began:.0f} / {waited:.0f}"
        )


@pytest.fixture(scope="module")
def outage(lab: Inventory) -> Iterator[Outage]:
    down, peer = lab.address(DOWN_NODE), lab.address(PEER_NODE)
    others = [address for addresses in lab.cassandra_by_dc().values() for address in addresses if address != down]
    # Never take a second replica of a DC down: start only from a healthy DC.
    wait_status(peer, down, "UN", 30)
    assert status_of(peer, peer) == "UN"
    receiver = alert_receiver()
    current = Outage(down, peer, _host_id(peer, down), others, time.perf_counter())
    current.notifications_before = len(receiver.notifications()) if receiver else 0
    try:
        stopped = ssh(down, "systemctl stop cassandra", timeout_s=120)
        assert stopped.returncode == 0, stopped.stderr
        FIGURES[f"{DOWN_NODE} seen DN by {PEER_NODE} (s after stop returned)"] = round(
            wait_status(peer, down, "DN", 60), 1
        )
        yield current
    finally:
        current.restore()


def _host_id(peer: str, address: str) -> str:
    """The host ID `nodetool status` on `peer` shows for `address`: hint files are named by it."""
    line = status_line(peer, address) or ""
    found = re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", line)
    assert found, f"no host ID for {address} in {peer}'s nodetool status: {line!r}"
    return found.group(0)


def _hint_files_for(node: str, host_id: str) -> int:
    """Hint files `node` keeps for the host `host_id` (<host id>-<time>-<version>.hints).
    (`nodetool listpendinghints` lists none while the target is down, so the files it is.)"""
    listed = ssh(node, f"ls -1 {HINTS_DIR}", timeout_s=60)
    assert listed.returncode == 0, listed.stderr
    return sum(name.startswith(host_id) and name.endswith(".hints") for name in listed.stdout.split())


def _hints_for(outage: Outage) -> dict[str, int]:
    counts = {node: _hint_files_for(node, outage.down_id) for node in outage.others}
    return {node: count for node, count in counts.items() if count}


def expected(factors: dict[str, int]) -> dict[str, str]:
    """What each write level gets with cass-a2 down and cass-a1 coordinating, from the
    quorum arithmetic (loadtest/quorum.py). The shared keyspace: 5 of 6 replicas alive,
    1 of 2 in Yangon, so LOCAL_QUORUM fails and QUORUM (4 of 6) holds. Yangon's own
    keyspace, 2 replicas in Yangon and its standby in Mandalay: 2 of 3 alive, so QUORUM
    holds and LOCAL_QUORUM, EACH_QUORUM and ALL fail."""
    alive = replicas(factors) - {("Yangon", 1)}
    return {level: "ok" if available(level, alive, factors, "Yangon") else "Unavailable" for level in WRITE_LEVELS}


@pytest.mark.parametrize("keyspace", ["shared", "region"])
def test_each_consistency_level_with_a_yangon_replica_down(lab: Inventory, outage: Outage, keyspace: str) -> None:
    """A write at each level, no driver retry, no fallback: which succeed, which refuse.
    Probes: a day-index partition of the shared keyspace nobody reads (branch
    'cl-probe-...'), and the header of a cart in Yangon's keyspace, both expiring."""
    branch = lab.branch_of("Yangon")
    probe = {
        "shared": "INSERT INTO sale_days (branch, day) VALUES (%s, '2000-01-01') USING TTL 600",
        "region": f"INSERT INTO {lab.home_keyspace(branch)}.carts (cart_id, branch, status) "
        f"VALUES (%s, '{branch}', 'probe') USING TTL 600",
    }[keyspace]
    cluster, session = session_on(outage.peer, SHARED_KEYSPACE, ConsistencyLevel.LOCAL_ONE, timeout_s=15)
    seen = {}
    name = {"shared": SHARED_KEYSPACE, "region": lab.home_keyspace(branch)}[keyspace]
    factors = dict(cluster.metadata.keyspaces[name].replication_strategy.dc_replication_factors)
    planned = derived_factors(lab.cassandra_by_dc())
    if keyspace == "region":
        planned = region_replication(lab.home_region(branch), planned, lab.standby_replicas())
    assert factors == planned, "the live replication is checkout-schema's plan"
    try:
        for name in WRITE_LEVELS:
            statement = SimpleStatement(probe, consistency_level=ConsistencyLevel.name_to_value[name])
            try:
                session.execute(statement, (f"cl-probe-{name}-{uuid.uuid4()}",))
                seen[name] = "ok"
            except Unavailable as error:
                seen[name] = "Unavailable"
                assert error.consistency == ConsistencyLevel.name_to_value[name]
                assert error.alive_replicas < error.required_replicas
    finally:
        cluster.shutdown()
    FIGURES[f"write per consistency level, {keyspace} keyspace, cass-a2 down (coordinator cass-a1)"] = seen
    assert seen == expected(factors)


def _checkout(api: str, branch: str, products: list[dict[str, Any]], n: int) -> dict[str, Any]:
    cart = http(api, "POST", "/carts", json_body={"branch": branch})
    assert cart.status == 201, cart.body
    cart_id = cart.body["cart_id"]
    lines = {products[(n * 37) % len(products)]["product_id"]: 1 + n % 3,
             products[(n * 53 + 11) % len(products)]["product_id"]: 2}  # fmt: skip
    for product_id, quantity in lines.items():
        added = http(api, "POST", f"/carts/{cart_id}/items",
                     json_body={"product_id": product_id, "quantity": quantity})  # fmt: skip
        assert added.status == 200, added.body
    key = str(uuid.uuid4())
    request = {"payment": "Cash", "customer_type": "Normal", "rating": MARKER_RATING}
    path = f"/carts/{cart_id}/checkout"
    reply = http(api, "POST", path, json_body=request, headers={"Idempotency-Key": key})
    assert reply.status == 201, f"checkout {n} with {DOWN_NODE} down: HTTP {reply.status} {reply.body}"
    receipt = reply.body
    assert receipt["invoice_id"] == invoice_id_for(key)
    if n % 4 == 0:  # a client retry: same answer, nothing new sold
        again = http(api, "POST", path, json_body=request, headers={"Idempotency-Key": key})
        assert again.status == 201 and again.body == receipt, again.body
    return {"receipt": receipt, "lines": lines, "elapsed_s": reply.elapsed_s}


def _downgrades(api: str, port: int) -> float:
    return metric_total(api, port, "checkout_cassandra_consistency_downgrades_total")


def _wait_rows(session: Any, statement: Any, keys: list[tuple[Any, ...]], expected: int) -> list[Any]:
    deadline = time.perf_counter() + STORED_WITHIN_S
    while True:
        rows = [row for key in keys for row in session.execute(statement, key)]
        if len(rows) >= expected or time.perf_counter() > deadline:
            return rows
        time.sleep(0.5)


def _replayed_slice() -> list[SaleKey]:
    """Where the first REPLAY_ROWS dataset sales are stored (branch, store day, sale time)."""
    lines = DATASET.read_text("utf-8").splitlines()[: REPLAY_ROWS + 1]
    parsed = parse_lines(lines)
    assert not parsed.errors, parsed.errors
    return [
        SaleKey(row.branch.value, row.sold_at.astimezone(STORE_TZ).date(), row.sold_at, row.invoice_id)
        for row in parsed.rows
    ]


def test_checkouts_and_replay_during_the_outage_are_stored_exactly_once(
    lab: Inventory, dc_sessions: dict[str, Any], outage: Outage
) -> None:
    api = lab.address(lab.app_host_of("Yangon"))
    branch = lab.branch_of("Yangon")
    products = http(api, "GET", "/products").body
    before = _downgrades(api, API_PORT)
    window_start = datetime.now(UTC) - timedelta(seconds=1)
    sold = [_checkout(api, branch, products, n) for n in range(CHECKOUTS)]
    window_end = datetime.now(UTC) + timedelta(seconds=1)
    latencies = sorted(s["elapsed_s"] * 1000 for s in sold)
    FIGURES[f"{CHECKOUTS} checkouts on app-a with {DOWN_NODE} down: p50 / max (ms)"] = (
        f"{latencies[len(latencies) // 2]:.0f} / {latencies[-1]:.0f}"
    )
    downgraded = _downgrades(api, API_PORT) - before
    FIGURES["app-a API statements downgraded LOCAL_QUORUM -> LOCAL_ONE during them"] = downgraded
    assert downgraded > 0, "the Yangon API met LOCAL_QUORUM with a Yangon replica down?"

    # A slice of the dataset, replayed through Kafka into the consumers during the outage.
    slice_sales = _replayed_slice()
    replay_started_us = int(time.time() * 1_000_000)
    replayed = ssh(
        api,
        "set -e; csv=$(ls /opt/checkout/venv/lib/python3*/site-packages/checkout/data/supermarket_sales.csv); "
        f'head -n {REPLAY_ROWS + 1} "$csv" > /tmp/node-loss-slice.csv; '
        "checkout-replay --csv /tmp/node-loss-slice.csv --batch-size 10",
        timeout_s=120,
    )
    assert replayed.returncode == 0, f"{replayed.stdout}\n{replayed.stderr}"
    assert f"sent {REPLAY_ROWS} events" in replayed.stdout, replayed.stdout

    ours = {s["receipt"]["invoice_id"]: s for s in sold}
    keys = {invoice_id: SaleKey.of(s["receipt"]) for invoice_id, s in ours.items()}
    lines_total = sum(len(s["lines"]) for s in sold)
    # The DC sessions read at LOCAL_ONE: LOCAL_QUORUM in Yangon is what the outage breaks.
    for dc, session in dc_sessions.items():
        sale_row = session.prepare(f"SELECT invoice_id, lines, WRITETIME(total) AS written FROM sales {SALE_WHERE}")
        rows = _wait_rows(session, sale_row, [k.params() for k in keys.values()], len(ours))
        stored = {row.invoice_id: stored_lines(row._asdict()) for row in rows}
        for invoice_id, s in ours.items():
            assert invoice_id in stored, f"DC {dc}: invoice {invoice_id} not stored"
            products_sold = {line.product_id: line.quantity for line in stored[invoice_id]}
            assert products_sold == s["lines"], f"DC {dc}: invoice {invoice_id}"

        # No other invoice carries this module's marker in the window, and none twice.
        days = sorted({window_start.astimezone(STORE_TZ).date(), window_end.astimezone(STORE_TZ).date()})
        branch_day = session.prepare(
            "SELECT invoice_id, rating FROM sales WHERE branch = ? AND day = ? AND sold_at >= ? AND sold_at <= ?"
        )
        window = [r for day in days for r in session.execute(branch_day, (branch, day, window_start, window_end))
                  if str(r.rating) == MARKER_RATING]  # fmt: skip
        assert {r.invoice_id for r in window} == set(ours), f"DC {dc}: invoices in the window"
        assert len(window) == len(ours), f"DC {dc}: {len(window)} sales rows for {len(ours)} invoices"

        # The replayed slice: rewritten by this replay, one row each.
        replay_rows = _wait_rows(session, sale_row, [k.params() for k in slice_sales], REPLAY_ROWS)
        deadline = time.perf_counter() + STORED_WITHIN_S
        while sum(r.written >= replay_started_us for r in replay_rows) < REPLAY_ROWS:
            if time.perf_counter() > deadline:
                break
            time.sleep(1)
            replay_rows = [row for k in slice_sales for row in session.execute(sale_row, k.params())]
        assert sorted(r.invoice_id for r in replay_rows) == sorted(k.invoice_id for k in slice_sales), (
            f"DC {dc}: replayed slice"
        )
        fresh = sum(r.written >= replay_started_us for r in replay_rows)
        assert fresh == REPLAY_ROWS, f"DC {dc}: {fresh} of {REPLAY_ROWS} replayed sales rewritten"

    # Stock, in Yangon's own keyspace (Yangon DC only): each checkout moved it once per line,
    # keyed by its invoice, in the partition of its store day; the replayed history, not at all.
    session = dc_sessions[lab.home_region(branch)]
    stock_moves = f"{lab.home_keyspace(branch)}.stock_moves"
    moves = session.prepare(
        f"SELECT delta FROM {stock_moves} WHERE branch = ? AND day = ? AND product_id = ? AND movement_id = ?"
    )
    for invoice_id, s in ours.items():
        for product_id, quantity in s["lines"].items():
            params = (branch, keys[invoice_id].day, product_id, invoice_id)
            deltas = [r.delta for r in session.execute(moves, params)]
            assert deltas == [-quantity], f"stock of {product_id} for {invoice_id}: {deltas}"
    for home in sorted({k.branch for k in slice_sales}):
        history = dc_sessions[lab.home_region(home)].prepare(
            f"SELECT product_id, movement_id FROM {lab.home_keyspace(home)}.stock_moves WHERE branch = ? AND day = ?"
        )
        days = sorted({k.day for k in slice_sales if k.branch == home})
        moved = [r for day in days for r in dc_sessions[lab.home_region(home)].execute(history, (home, day))]
        assert moved == [], f"replayed sales of branch {home} moved stock: {moved[:5]}"
    FIGURES[f"stored exactly once in 3 DCs with {DOWN_NODE} down"] = (
        f"{len(ours)} checkouts ({lines_total} lines), {REPLAY_ROWS} replayed sales"
    )


ALERT = "CassandraNodeDown"
# The rule's `for: 1m`, scrape and evaluation every 15 s, Alertmanager's group_wait 5 s.
FIRING_WITHIN_S = 150.0
RESOLVED_WITHIN_S = 120.0


@pytest.fixture(scope="module")
def receiver(outage: Outage) -> tuple[AlertReceiver, int]:
    """The lab's alert receiver and how many notifications it held when the outage began."""
    found = alert_receiver()
    if found is None:
        pytest.skip("the inventory runs no alert receiver (prometheus_alert_receiver_enabled)")
    return found, outage.notifications_before


def test_the_outage_is_alerted_at_the_receiver(outage: Outage, receiver: tuple[AlertReceiver, int]) -> None:
    """Prometheus -> Alertmanager -> the receiver: someone hears of the down node."""
    alerts, before = receiver
    waited = alerts.wait_for(ALERT, DOWN_NODE, "firing", before, FIRING_WITHIN_S)
    FIGURES[f"{ALERT} for {DOWN_NODE} at the alert receiver, s after the stop"] = round(
        time.perf_counter() - outage.began
    )
    assert waited <= FIRING_WITHIN_S


def test_the_node_gets_what_it_missed_by_hinted_handoff(outage: Outage) -> None:
    """The coordinators keep hints for the down replica (flushed to files every 10 s) and
    hand them over once it is back (then delete the files), so it need not wait for a repair."""
    deadline = time.perf_counter() + HINTS_WITHIN_S
    while not (hinted := _hints_for(outage)) and time.perf_counter() < deadline:
        time.sleep(2)
    FIGURES[f"hint files held for {DOWN_NODE} during the outage, by node"] = hinted
    assert hinted, f"no node holds hints for {outage.down} after writes during its outage"
    outage.restore()
    back_at = time.perf_counter()
    while (left := _hints_for(outage)) and time.perf_counter() - back_at < HINTS_WITHIN_S:
        time.sleep(2)
    FIGURES[f"hints for {DOWN_NODE} delivered, s after it was UN"] = round(time.perf_counter() - back_at, 1)
    assert not left, f"hints for {outage.down} still pending {HINTS_WITHIN_S:.0f} s after it came back: {left}"


def test_the_alert_resolves_once_the_node_is_back(outage: Outage, receiver: tuple[AlertReceiver, int]) -> None:
    alerts, before = receiver
    outage.restore()
    alerts.wait_for(ALERT, DOWN_NODE, "resolved", before, RESOLVED_WITHIN_S)
    FIGURES[f"{ALERT} for {DOWN_NODE} resolved at the receiver, s after the node was UN"] = round(
        time.perf_counter() - outage.back_at
    )
