"""Payment gateway interface and the lab's sandbox gateway.

A charge is identified by its idempotency key: asking again with the same key returns
the first answer (and its approval time) without charging twice, and asking with the
same key for another amount or method is refused, as real gateways do. The sandbox keeps
its charges in a ChargeLedger: in memory for unit tests, in Cassandra for the API
(storage.CassandraChargeLedger), so a retry on another API node or after a restart gets
the first answer back, as it would from a real gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from checkout.domain import PaymentMethod


class ChargeOutcome(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    key: str
    amount: Decimal
    method: PaymentMethod
    reference: str


@dataclass(frozen=True, slots=True)
class ChargeResult:
    charge_id: str
    outcome: ChargeOutcome
    decided_at: datetime
    reason: str | None = None


class PaymentTimeout(Exception):
    """The gateway did not answer in time; whether it charged is unknown to the caller."""


class ChargeConflict(Exception):
    """The idempotency key was already used for a different charge."""


@dataclass(frozen=True, slots=True)
class StoredCharge:
    request: ChargeRequest
    result: ChargeResult


class ChargeLedger(Protocol):
    """Where the sandbox keeps its charges, by idempotency key."""

    async def get(self, key: str) -> StoredCharge | None: ...

    async def claim(self, charge: StoredCharge) -> StoredCharge:
        """Store the charge unless the key already has one; return the one that stands."""
        ...

    async def void(self, key: str) -> None: ...


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


def to_millis(moment: datetime) -> datetime:
    """Cassandra timestamps hold milliseconds: a decision time read back from the ledger
    must equal the one first answered, or a retry would publish another sold_at."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class PaymentGateway(Protocol):
    async def charge(self, request: ChargeRequest) -> ChargeResult: ...

    async def void(self, key: str) -> None:
        """Cancel whatever the key charged, if anything; a later charge with it is new."""
        ...


# Decline reasons weighted roughly as card networks report them.
_DECLINE_REASONS: dict[PaymentMethod, tuple[tuple[str, int], ...]] = {
    PaymentMethod.CREDIT_CARD: (
        ("insufficient_funds", 45),
        ("do_not_honor", 25),
        ("expired_card", 15),
        ("suspected_fraud", 10),
        ("incorrect_cvc", 5),
    ),
    PaymentMethod.EWALLET: (
        ("insufficient_balance", 60),
        ("wallet_locked", 25),
        ("daily_limit_exceeded", 15),
    ),
}

Sleep = Callable[[float], Awaitable[None]]


class _KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class SandboxGateway:
    """In-process gateway for the lab: seeded, so a run is reproducible.

    Cash is tendered at the till and always approved quickly. Cards and e-wallets wait a
    log-normal latency around the configured median, are declined at `decline_rate`,
    and at `timeout_rate` hang far past any sensible deadline; half of those hangs have
    charged before hanging (the answer is lost), which is what makes retries with the
    same key and voids necessary.
    """

    def __init__(
        self,
        *,
        seed: int,
        median_latency_s: float,
        decline_rate: float,
        timeout_rate: float,
        hang_s: float,
        ledger: ChargeLedger | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._rng = random.Random(seed)
        self._median_latency_s = median_latency_s
        self._decline_rate = decline_rate
        self._timeout_rate = timeout_rate
        self._hang_s = hang_s
        self._sleep = sleep
        self._clock = clock
        self._ledger: ChargeLedger = ledger if ledger is not None else MemoryChargeLedger()
        self._locks = _KeyedLocks()

    def captured(self) -> list[ChargeResult]:
        """Approved charges that still stand (not voided), when kept in memory."""
        if not isinstance(self._ledger, MemoryChargeLedger):
            raise TypeError("captured() reads the in-memory ledger only")
        return [
            c.result
            for c in self._ledger.charges.values()
            if c.result.outcome is ChargeOutcome.APPROVED
        ]

    def _now(self) -> datetime:
        return to_millis(self._clock())

    def _latency(self) -> float:
        if self._median_latency_s <= 0:
            return 0.0
        return self._rng.lognormvariate(math.log(self._median_latency_s), 0.5)

    def _decide(self, request: ChargeRequest) -> ChargeResult:
        # Unique across API nodes and restarts (they share the ledger); the seeded RNG
        # only decides outcomes and latencies.
        charge_id = f"ch_sandbox_{uuid.uuid4().hex[:20]}"
        reasons = _DECLINE_REASONS.get(request.method)
        if reasons and self._rng.random() < self._decline_rate:
            names, weights = zip(*reasons, strict=True)
            reason = self._rng.choices(names, weights=weights)[0]
            return ChargeResult(charge_id, ChargeOutcome.DECLINED, self._now(), reason)
        return ChargeResult(charge_id, ChargeOutcome.APPROVED, self._now())

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        # One lock per key in this process; the ledger's claim settles a race between
        # processes (the first stored charge stands, the other attempt answers with it).
        async with self._locks.hold(request.key):
            known = await self._ledger.get(request.key)
            if known is not None:
                return _same_charge(known, request)
            if request.method is PaymentMethod.CASH:
                await self._sleep(self._latency() / 10)
                receipt = f"cash_{request.reference}"
                return await self._store(
                    request, ChargeResult(receipt, ChargeOutcome.APPROVED, self._now())
                )
            if self._rng.random() < self._timeout_rate:
                if self._rng.random() < 0.5:
                    await self._store(request, self._decide(request))
                await self._sleep(self._hang_s)
                raise PaymentTimeout(f"sandbox gateway hung for {self._hang_s}s")
            await self._sleep(self._latency())
            return await self._store(request, self._decide(request))

    async def _store(self, request: ChargeRequest, result: ChargeResult) -> ChargeResult:
        stored = await self._ledger.claim(StoredCharge(request, result))
        return _same_charge(stored, request)

    async def void(self, key: str) -> None:
        await self._ledger.void(key)


def _same_charge(known: StoredCharge, request: ChargeRequest) -> ChargeResult:
    first = known.request
    if (first.amount, first.method) != (request.amount, request.method):
        raise ChargeConflict(
            f"key {request.key!r} already charged {first.amount} by {first.method}"
        )
    return known.result
