"""The gateway's SQLite ledger: its charges outlive the process, by idempotency key.

Two gateways over one ledger file stand for the gateway before and after a restart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from checkout.domain import PaymentMethod
from checkout.gateway import SandboxGateway, SqliteChargeLedger, StoredCharge
from checkout.payments import ChargeConflict, ChargeOutcome, ChargeRequest, ChargeResult

AT = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def card(key: str, amount: str = "10.50", fingerprint: str = "fp-1") -> ChargeRequest:
    return ChargeRequest(key, Decimal(amount), PaymentMethod.CREDIT_CARD, f"inv-{key}", fingerprint)


def stored(key: str, charge_id: str, at: datetime = AT) -> StoredCharge:
    return StoredCharge(card(key), ChargeResult(charge_id, ChargeOutcome.APPROVED, at))


def gateway(ledger: SqliteChargeLedger, *, seed: int = 7, latency_s: float = 0.0) -> SandboxGateway:
    return SandboxGateway(
        seed=seed,
        median_latency_s=latency_s,
        decline_rate=0.0,
        timeout_rate=0.0,
        hang_s=0.0,
        ledger=ledger,
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "ledger.db"


def test_the_ledger_file_is_wal_and_fully_synchronous(path: Path) -> None:
    ledger = SqliteChargeLedger(path)
    try:
        assert ledger._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert ledger._db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    finally:
        ledger.close()


def test_a_charge_round_trips_with_its_time_to_the_millisecond(path: Path) -> None:
    ledger = SqliteChargeLedger(path)
    charge = stored("k", "ch_1")
    assert asyncio.run(ledger.claim(charge)) == charge
    assert asyncio.run(ledger.get("k")) == charge
    ledger.close()
    row = sqlite3.connect(path).execute("SELECT amount, decided_at FROM charges").fetchone()
    assert row == ("10.50", "2026-01-02T03:04:05.678+00:00")


def test_the_first_claim_of_a_key_stands(path: Path) -> None:
    ledger = SqliteChargeLedger(path)
    first = stored("k", "ch_first")
    asyncio.run(ledger.claim(first))
    assert asyncio.run(ledger.claim(stored("k", "ch_second", AT.replace(second=9)))) == first
    asyncio.run(ledger.void("k"))
    asyncio.run(ledger.void("k"))
    assert asyncio.run(ledger.get("k")) is None
    ledger.close()


def test_a_retry_after_a_restart_gets_the_first_answer_and_time(path: Path) -> None:
    before = SqliteChargeLedger(path)
    first = asyncio.run(gateway(before).charge(card("k1")))
    before.close()
    after = SqliteChargeLedger(path)  # the restarted gateway, another seed
    again = asyncio.run(gateway(after, seed=99).charge(card("k1")))
    assert again.replayed
    assert dataclasses.replace(again, replayed=False) == first
    assert first.decided_at.microsecond % 1000 == 0
    assert asyncio.run(after.count()) == 1
    after.close()


def test_another_fingerprint_or_amount_with_the_key_is_refused_after_a_restart(
    path: Path,
) -> None:
    before = SqliteChargeLedger(path)
    asyncio.run(gateway(before).charge(card("k3")))
    before.close()
    after = SqliteChargeLedger(path)
    with pytest.raises(ChargeConflict):
        asyncio.run(gateway(after).charge(card("k3", fingerprint="fp-2")))
    with pytest.raises(ChargeConflict):
        asyncio.run(gateway(after).charge(card("k3", amount="99.00")))
    after.close()


def test_concurrent_charges_with_one_key_make_one_row(path: Path) -> None:
    ledger = SqliteChargeLedger(path)

    async def race() -> set[str]:
        sandbox = gateway(ledger, latency_s=0.005)
        results = await asyncio.gather(*(sandbox.charge(card("k")) for _ in range(8)))
        return {r.charge_id for r in results}

    assert len(asyncio.run(race())) == 1
    assert asyncio.run(ledger.count()) == 1
    ledger.close()


def test_charges_older_than_the_window_are_purged(path: Path) -> None:
    ledger = SqliteChargeLedger(path, retention_h=24)
    asyncio.run(ledger.claim(stored("old", "ch_old")))
    now = datetime.now(UTC)
    assert asyncio.run(ledger.purge(now)) == 0
    assert asyncio.run(ledger.purge(now + timedelta(hours=25))) == 1
    assert asyncio.run(ledger.get("old")) is None
    ledger.close()
