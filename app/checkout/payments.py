"""Payment gateway interface and the lab's sandbox gateway.

A charge is identified by its idempotency key: asking again with the same key returns
the first answer (and its approval time) without charging twice, and asking with the
same key for another amount or method is refused, as real gateways do.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
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
        remember_keys: int = 200_000,
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
        # Bounded like a real gateway's idempotency window, so a long load test cannot
        # grow the process without limit.
        self._remember_keys = remember_keys
        self._charges: OrderedDict[str, tuple[ChargeRequest, ChargeResult]] = OrderedDict()
        self._locks = _KeyedLocks()
        self._sequence = 0

    def captured(self) -> list[ChargeResult]:
        """Approved charges that still stand (not voided)."""
        return [r for _, r in self._charges.values() if r.outcome is ChargeOutcome.APPROVED]

    def _latency(self) -> float:
        if self._median_latency_s <= 0:
            return 0.0
        return self._rng.lognormvariate(math.log(self._median_latency_s), 0.5)

    def _decide(self, request: ChargeRequest) -> ChargeResult:
        self._sequence += 1
        charge_id = f"ch_sandbox_{self._sequence:08d}"
        reasons = _DECLINE_REASONS.get(request.method)
        if reasons and self._rng.random() < self._decline_rate:
            names, weights = zip(*reasons, strict=True)
            reason = self._rng.choices(names, weights=weights)[0]
            return ChargeResult(charge_id, ChargeOutcome.DECLINED, self._clock(), reason)
        return ChargeResult(charge_id, ChargeOutcome.APPROVED, self._clock())

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        # One lock per key: two concurrent attempts with one key must see one charge.
        async with self._locks.hold(request.key):
            known = self._charges.get(request.key)
            if known is not None:
                first, result = known
                if (first.amount, first.method) != (request.amount, request.method):
                    raise ChargeConflict(
                        f"key {request.key!r} already charged {first.amount} by {first.method}"
                    )
                return result
            if request.method is PaymentMethod.CASH:
                await self._sleep(self._latency() / 10)
                receipt = f"cash_{request.reference}"
                return self._store(
                    request, ChargeResult(receipt, ChargeOutcome.APPROVED, self._clock())
                )
            if self._rng.random() < self._timeout_rate:
                if self._rng.random() < 0.5:
                    self._store(request, self._decide(request))
                await self._sleep(self._hang_s)
                raise PaymentTimeout(f"sandbox gateway hung for {self._hang_s}s")
            await self._sleep(self._latency())
            return self._store(request, self._decide(request))

    def _store(self, request: ChargeRequest, result: ChargeResult) -> ChargeResult:
        self._charges[request.key] = (request, result)
        if len(self._charges) > self._remember_keys:
            self._charges.popitem(last=False)
        return result

    async def void(self, key: str) -> None:
        self._charges.pop(key, None)
