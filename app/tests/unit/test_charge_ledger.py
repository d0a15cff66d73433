"""The sandbox gateway's charges outlive a process and are shared by API nodes.

Two gateways over one ledger stand for two API nodes (or one node before and after a
restart); CassandraChargeLedger is driven through Cassandra.execute with a fake session
that keeps the sandbox_charges table in a dict and applies IF NOT EXISTS.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from cassandra import ConsistencyLevel, Unavailable
from cassandra.protocol import ErrorMessage
from fastapi.testclient import TestClient

from checkout.api import AppDependencies, create_app
from checkout.catalog import Catalog
from checkout.config import Settings
from checkout.domain import PaymentMethod
from checkout.errors import DependencyUnavailable
from checkout.payments import (
    ChargeConflict,
    ChargeOutcome,
    ChargeRequest,
    ChargeResult,
    MemoryChargeLedger,
    SandboxGateway,
    StoredCharge,
)
from checkout.service import CheckoutService
from checkout.storage import Cassandra, CassandraChargeLedger
from tests.unit.fakes import (
    FakeCartStore,
    FakeFuture,
    FakeIdempotencyStore,
    FakePublisher,
    FakeStockLedger,
)


def gateway(ledger: Any, *, latency_s: float = 0.0, seed: int = 7) -> SandboxGateway:
    return SandboxGateway(
        seed=seed,
        median_latency_s=latency_s,
        decline_rate=0.0,
        timeout_rate=0.0,
        hang_s=0.0,
        ledger=ledger,
    )


def card(key: str, amount: str = "10.50") -> ChargeRequest:
    return ChargeRequest(key, Decimal(amount), PaymentMethod.CREDIT_CARD, f"inv-{key}")


def test_a_retry_on_another_node_gets_the_first_answer_and_time() -> None:
    ledger = MemoryChargeLedger()
    first = asyncio.run(gateway(ledger).charge(card("k1")))
    again = asyncio.run(gateway(ledger, seed=99).charge(card("k1")))  # another node, restarted
    assert again == first
    assert first.decided_at.microsecond % 1000 == 0  # what Cassandra can store
    assert len(ledger.charges) == 1


def test_two_nodes_racing_on_one_key_answer_with_one_charge() -> None:
    ledger = MemoryChargeLedger()

    async def race() -> list[ChargeResult]:
        # Both decide (latency > 0), the ledger's claim keeps the first.
        nodes = [gateway(ledger, latency_s=0.01, seed=s) for s in (1, 2)]
        return list(await asyncio.gather(*(n.charge(card("k2")) for n in nodes)))

    a, b = asyncio.run(race())
    assert a == b
    assert len(ledger.charges) == 1


def test_another_amount_with_the_key_is_refused_across_nodes() -> None:
    ledger = MemoryChargeLedger()
    asyncio.run(gateway(ledger).charge(card("k3")))
    with pytest.raises(ChargeConflict):
        asyncio.run(gateway(ledger).charge(card("k3", "99.00")))


def test_a_pending_checkout_finished_on_another_api_node_sells_once(
    catalog: Catalog, product_id: str
) -> None:
    """Charged on node 1, whose publish failed (key pending); retried on node 2."""
    carts, idem, stock = FakeCartStore(), FakeIdempotencyStore(), FakeStockLedger()
    publisher = FakePublisher(failures_left=1)
    ledger = MemoryChargeLedger()

    def node(seed: int) -> TestClient:
        service = CheckoutService(
            catalog=catalog,
            carts=carts,
            idempotency=idem,
            stock=stock,
            publisher=publisher,
            gateway=gateway(ledger, seed=seed),
            region="Yangon",
            payment_timeout_s=1.0,
        )
        return TestClient(create_app(AppDependencies(service=service)))

    with node(1) as one, node(2) as two:
        cart_id = one.post("/carts", json={"branch": "A"}).json()["cart_id"]
        one.post(f"/carts/{cart_id}/items", json={"product_id": product_id, "quantity": 2})
        body, headers = {"payment": "Ewallet"}, {"Idempotency-Key": "pending-key"}
        assert one.post(f"/carts/{cart_id}/checkout", json=body, headers=headers).status_code == 503
        receipt = two.post(f"/carts/{cart_id}/checkout", json=body, headers=headers)
    assert receipt.status_code == 201, receipt.json()
    charge = next(iter(ledger.charges.values())).result
    assert receipt.json()["charge_id"] == charge.charge_id
    assert len(publisher.events) == 1
    assert publisher.events[0].sold_at == charge.decided_at
    assert len(stock.movements) == 1


# --- CassandraChargeLedger over a fake session --------------------------------------


COLUMNS = ("key", "amount", "method", "reference", "charge_id", "outcome", "decided_at", "reason")


@dataclass
class ChargesTable:
    """sandbox_charges in a dict; `paxos_down` makes every IF NOT EXISTS Unavailable."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    paxos_down: bool = False
    # Claims whose outcome comes back unknown (the proposal is applied nonetheless).
    unknown_outcomes: int = 0
    calls: list[tuple[str, str]] = field(default_factory=list)

    def prepare(self, cql: str) -> Any:
        return SimpleNamespace(query_string=cql, consistency_level=None, is_idempotent=False)

    def execute_async(self, statement: Any, params: Any, execution_profile: str = "") -> FakeFuture:
        cql = statement.query_string
        self.calls.append((execution_profile, cql.split()[0] + (" LWT" if "IF NOT" in cql else "")))
        if cql.startswith("SELECT"):
            row = self.rows.get(params[0])
            # The driver hands timestamps back naive, in UTC, to the millisecond.
            return FakeFuture([] if row is None else [SimpleNamespace(**row)])
        if cql.startswith("DELETE"):
            self.rows.pop(params[0], None)
            return FakeFuture([])
        row = dict(zip(COLUMNS, params, strict=True))
        row["decided_at"] = row["decided_at"].astimezone(UTC).replace(tzinfo=None)
        if "IF NOT EXISTS" not in cql:
            self.rows[row["key"]] = row
            return FakeFuture([])
        return FakeFuture(self._claim(row))

    def _claim(self, row: dict[str, Any]) -> Any:
        if self.paxos_down:
            return Unavailable(
                "SERIAL",
                consistency=ConsistencyLevel.SERIAL,
                required_replicas=2,
                alive_replicas=1,
            )
        existing = self.rows.get(row["key"])
        if existing is None:
            self.rows[row["key"]] = row
            if self.unknown_outcomes:
                self.unknown_outcomes -= 1
                message = (
                    "CAS operation result is unknown - proposal accepted by 3 but not a quorum."
                )
                return ErrorMessage(0x1700, message, {})
            return [(True,)]
        return [_lwt_row(existing)]


def _lwt_row(existing: dict[str, Any]) -> Any:
    """A not-applied LWT row: [applied] first, then the row that stands."""

    class Row(SimpleNamespace):
        def __getitem__(self, index: int) -> Any:
            return [False, *existing.values()][index]

    return Row(**existing)


def ledger_over(table: ChargesTable, **settings: Any) -> CassandraChargeLedger:
    db = Cassandra(
        Settings(cassandra_write_attempts=2, **settings),
        connect=lambda _settings, keyspace: (SimpleNamespace(), table),
    )
    return CassandraChargeLedger(db)


def stored(key: str, charge_id: str, at: datetime) -> StoredCharge:
    return StoredCharge(card(key), ChargeResult(charge_id, ChargeOutcome.APPROVED, at))


AT = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def test_cassandra_ledger_round_trips_a_charge() -> None:
    ledger = ledger_over(ChargesTable())
    charge = stored("k", "ch_1", AT)
    assert asyncio.run(ledger.claim(charge)) == charge
    assert asyncio.run(ledger.get("k")) == charge
    asyncio.run(ledger.void("k"))
    assert asyncio.run(ledger.get("k")) is None


def test_cassandra_ledger_claim_keeps_the_first_charge() -> None:
    table = ChargesTable()
    ledger = ledger_over(table)
    first = stored("k", "ch_first", AT)
    asyncio.run(ledger.claim(first))
    assert asyncio.run(ledger.claim(stored("k", "ch_second", AT.replace(second=9)))) == first
    assert table.rows["k"]["charge_id"] == "ch_first"


def test_without_a_serial_quorum_the_claim_falls_back_to_a_plain_write() -> None:
    table = ChargesTable(paxos_down=True)
    ledger = ledger_over(table)
    charge = stored("k", "ch_1", AT)
    assert asyncio.run(ledger.claim(charge)) == charge
    assert table.rows["k"]["charge_id"] == "ch_1"
    assert [kind for _, kind in table.calls] == ["INSERT LWT", "INSERT LWT", "SELECT", "INSERT"]
    # A charge already there (e.g. the racing node's) is answered instead of overwritten.
    assert asyncio.run(ledger.claim(stored("k", "ch_2", AT))) == charge


def test_without_a_fallback_a_lost_serial_quorum_is_a_503() -> None:
    ledger = ledger_over(ChargesTable(paxos_down=True), cassandra_fallback_consistency="")
    with pytest.raises(DependencyUnavailable):
        asyncio.run(ledger.claim(stored("k", "ch_1", AT)))


def test_a_claim_whose_outcome_is_unknown_is_run_again_and_answers_what_stands() -> None:
    table = ChargesTable(unknown_outcomes=1)
    ledger = ledger_over(table)
    charge = stored("k", "ch_1", AT)
    # The first proposal was in fact accepted; the second run finds it (not applied).
    assert asyncio.run(ledger.claim(charge)) == charge
    assert [kind for _, kind in table.calls] == ["INSERT LWT", "INSERT LWT"]
