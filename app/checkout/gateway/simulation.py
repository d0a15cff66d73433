"""The sandbox acquirer's behaviour: latency, declines and hangs, idempotent by key.

SandboxGateway is the simulation over any ChargeLedger. The HTTP service
(checkout.gateway.service) runs it over the SQLite ledger; the unit tests run it
in-process over a MemoryChargeLedger.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

from checkout.domain import PaymentMethod
from checkout.gateway.ledger import ChargeLedger, MemoryChargeLedger, StoredCharge
from checkout.payments import (
    ChargeConflict,
    ChargeOutcome,
    ChargeRequest,
    ChargeResult,
    PaymentTimeout,
    to_millis,
)

# Decline reasons weighted roughly as card networks report them.
DECLINE_REASONS: dict[PaymentMethod, tuple[tuple[str, int], ...]] = {
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


class KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

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
    """The lab's acquirer: seeded, so a run is reproducible.

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
        self.ledger: ChargeLedger = ledger if ledger is not None else MemoryChargeLedger()
        self._locks = KeyedLocks()

    def captured(self) -> list[ChargeResult]:
        """Approved charges that still stand (not voided), when kept in memory."""
        if not isinstance(self.ledger, MemoryChargeLedger):
            raise TypeError("captured() reads the in-memory ledger only")
        return [
            c.result
            for c in self.ledger.charges.values()
            if c.result.outcome is ChargeOutcome.APPROVED
        ]

    def _now(self) -> datetime:
        return to_millis(self._clock())

    def _latency(self) -> float:
        if self._median_latency_s <= 0:
            return 0.0
        return self._rng.lognormvariate(math.log(self._median_latency_s), 0.5)

    def _decide(self, request: ChargeRequest) -> ChargeResult:
        # Unique across restarts; the seeded RNG only decides outcomes and latencies.
        charge_id = f"ch_sandbox_{uuid.uuid4().hex[:20]}"
        reasons = DECLINE_REASONS.get(request.method)
        if reasons and self._rng.random() < self._decline_rate:
            names, weights = zip(*reasons, strict=True)
            reason = self._rng.choices(names, weights=weights)[0]
            return ChargeResult(charge_id, ChargeOutcome.DECLINED, self._now(), reason)
        return ChargeResult(charge_id, ChargeOutcome.APPROVED, self._now())

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        # One lock per key in this process, so two concurrent requests with one key make
        # one charge; the ledger's claim settles anything else (the first stored stands).
        async with self._locks.hold(request.key):
            known = await self.ledger.get(request.key)
            if known is not None:
                return dataclasses.replace(same_charge(known, request), replayed=True)
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
        stored = await self.ledger.claim(StoredCharge(request, result))
        answer = same_charge(stored, request)
        return answer if stored.result == result else dataclasses.replace(answer, replayed=True)

    async def void(self, key: str) -> None:
        # Not behind the key's lock: a caller voids because a charge hangs, and that
        # charge holds the lock for the whole hang (it stored first, if it charged).
        await self.ledger.void(key)

    async def lookup(self, key: str) -> StoredCharge | None:
        return await self.ledger.get(key)


def same_charge(known: StoredCharge, request: ChargeRequest) -> ChargeResult:
    """The stored answer, when the key is asked for the same charge; else ChargeConflict."""
    first = known.request
    if (first.fingerprint, first.amount, first.method) != (
        request.fingerprint,
        request.amount,
        request.method,
    ):
        raise ChargeConflict(
            f"idempotency key {request.key!r} was already used for another charge "
            f"({first.amount} by {first.method.value})"
        )
    return known.result
