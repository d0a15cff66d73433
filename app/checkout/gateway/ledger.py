"""The sandbox acquirer's ledger: its charges by idempotency key.

A real acquirer keeps its own books: the lab's gateway keeps them in a SQLite file on
its own host, never in the platform's Cassandra, so a checkout retried after an API
node (or the gateway itself) restarted gets the first answer back, and losing the
platform's database cannot lose the acquirer's record of what it charged.

MemoryChargeLedger keeps one process's charges, for the unit tests and the in-process
gateway.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from checkout.domain import PaymentMethod
from checkout.payments import ChargeOutcome, ChargeRequest, ChargeResult


@dataclass(frozen=True, slots=True)
class StoredCharge:
    request: ChargeRequest
    result: ChargeResult


class ChargeLedger(Protocol):
    """Where the gateway keeps its charges, by idempotency key."""

    async def get(self, key: str) -> StoredCharge | None: ...

    async def claim(self, charge: StoredCharge) -> StoredCharge:
        """Store the charge unless the key already has one; return the one that stands."""
        ...

    async def void(self, key: str) -> None: ...

    async def approved_before(
        self, before: datetime, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[StoredCharge]:
        """Approved charges decided before `before` (and after the (time, key) cursor
        `after`, for the next page), oldest first: the reconciler's report."""
        ...


class MemoryChargeLedger:
    """One process's charges; bounded like a real gateway's idempotency window, so a long
    load test cannot grow the process without limit."""

    def __init__(self, remember_keys: int = 200_000) -> None:
        self._remember_keys = remember_keys
        self.charges: OrderedDict[str, StoredCharge] = OrderedDict()

    async def get(self, key: str) -> StoredCharge | None:
        return self.charges.get(key)

    async def claim(self, charge: StoredCharge) -> StoredCharge:
        known = self.charges.setdefault(charge.request.key, charge)
        if len(self.charges) > self._remember_keys:
            self.charges.popitem(last=False)
        return known

    async def void(self, key: str) -> None:
        self.charges.pop(key, None)

    async def approved_before(
        self, before: datetime, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[StoredCharge]:
        approved = sorted(
            (
                c
                for c in self.charges.values()
                if c.result.outcome is ChargeOutcome.APPROVED
                and c.result.decided_at < before
                and (after is None or (c.result.decided_at, c.request.key) > after)
            ),
            key=lambda c: (c.result.decided_at, c.request.key),
        )
        return approved[:limit]


def iso_millis(moment: datetime) -> str:
    """ISO-8601 with its UTC offset, to the millisecond: how the ledger and the API write times."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS charges (
    key         TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    amount      TEXT NOT NULL,
    method      TEXT NOT NULL,
    reference   TEXT NOT NULL,
    charge_id   TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    decided_at  TEXT NOT NULL,
    reason      TEXT,
    created_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS charges_created_at ON charges (created_at);
"""
_COLUMNS = "key, fingerprint, amount, method, reference, charge_id, outcome, decided_at, reason"


class SqliteChargeLedger:
    """Charges in one SQLite file: WAL, and synchronous=FULL so an answered charge is on
    disk before the answer leaves (a power cut cannot lose a charge the client was told of).

    Every call runs in a worker thread (asyncio.to_thread): with synchronous=FULL each
    commit waits for an fsync, which takes milliseconds on a quiet disk and far more on a
    busy VM; inline, that wait would stall every other request's simulated latency and
    the health checks. One connection, used by one thread at a time (the lock), keeps
    the claim's insert-then-read atomic.
    """

    def __init__(self, path: str | Path, *, retention_h: float = 24.0) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._retention = timedelta(hours=retention_h)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=10.0
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    # --- blocking halves, run in a worker thread ---------------------------------------

    def _get(self, key: str) -> StoredCharge | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM charges WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else _stored(row)

    def _claim(self, charge: StoredCharge) -> StoredCharge:
        request, result = charge.request, charge.result
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    f"INSERT OR IGNORE INTO charges ({_COLUMNS}, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        request.key,
                        request.fingerprint,
                        str(request.amount),
                        request.method.value,
                        request.reference,
                        result.charge_id,
                        result.outcome.value,
                        iso_millis(result.decided_at),
                        result.reason,
                        iso_millis(datetime.now(UTC)),
                    ),
                )
                row = self._db.execute(
                    f"SELECT {_COLUMNS} FROM charges WHERE key = ?", (request.key,)
                ).fetchone()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return _stored(row)

    def _void(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM charges WHERE key = ?", (key,))

    def _approved_before(
        self, before: datetime, limit: int, after: tuple[datetime, str] | None
    ) -> list[StoredCharge]:
        since, key = (iso_millis(after[0]), after[1]) if after else ("", "")
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM charges WHERE outcome = ? AND decided_at < ?"
                " AND (decided_at > ? OR (decided_at = ? AND key > ?))"
                " ORDER BY decided_at, key LIMIT ?",
                (ChargeOutcome.APPROVED.value, iso_millis(before), since, since, key, limit),
            ).fetchall()
        return [_stored(row) for row in rows]

    def _purge(self, now: datetime) -> int:
        cutoff = iso_millis(now - self._retention)
        with self._lock:
            return self._db.execute("DELETE FROM charges WHERE created_at < ?", (cutoff,)).rowcount

    def _count(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT count(*) FROM charges").fetchone()
        return int(count)

    # --- the ChargeLedger interface ------------------------------------------------------

    async def get(self, key: str) -> StoredCharge | None:
        return await asyncio.to_thread(self._get, key)

    async def claim(self, charge: StoredCharge) -> StoredCharge:
        return await asyncio.to_thread(self._claim, charge)

    async def void(self, key: str) -> None:
        await asyncio.to_thread(self._void, key)

    async def approved_before(
        self, before: datetime, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[StoredCharge]:
        return await asyncio.to_thread(self._approved_before, before, limit, after)

    async def purge(self, now: datetime | None = None) -> int:
        """Forget charges older than the idempotency window (24 h); returns how many."""
        return await asyncio.to_thread(self._purge, now or datetime.now(UTC))

    async def count(self) -> int:
        return await asyncio.to_thread(self._count)

    def ping(self) -> None:
        """Raise sqlite3.Error when the file cannot be read."""
        with self._lock:
            self._db.execute("SELECT 1 FROM charges LIMIT 1").fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _stored(row: tuple[str, ...]) -> StoredCharge:
    key, fingerprint, amount, method, reference, charge_id, outcome, decided_at, reason = row
    return StoredCharge(
        ChargeRequest(key, Decimal(amount), PaymentMethod(method), reference, fingerprint),
        ChargeResult(charge_id, ChargeOutcome(outcome), datetime.fromisoformat(decided_at), reason),
    )
