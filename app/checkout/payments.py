"""Payment gateway interface: what the checkout asks an acquirer, and what it answers.

A charge is identified by its idempotency key: asking again with the same key returns
the first answer (and its approval time) without charging twice, and asking with the
same key for another request (fingerprint, amount or method) is refused, as real gateways
do. The lab's acquirer is its own service with its own ledger (checkout.gateway, reached
over HTTP by checkout.adapters.gateway_http); checkout.gateway.SandboxGateway runs the
same simulation in-process for the unit tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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
    # What the key stands for (the API's hash of the checkout request): the key asked
    # again with another fingerprint is refused.
    fingerprint: str


@dataclass(frozen=True, slots=True)
class ChargeResult:
    charge_id: str
    outcome: ChargeOutcome
    decided_at: datetime
    reason: str | None = None
    # True when the gateway answered with a charge the key already had.
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class ApprovedCharge:
    """A line of the acquirer's report of approved charges (checkout.reconcile reads it)."""

    key: str
    reference: str  # the invoice id the checkout gave the charge
    decided_at: datetime  # the approval time, which is the sale's time


class PaymentTimeout(Exception):
    """The gateway did not answer in time; whether it charged is unknown to the caller."""


class ChargeConflict(Exception):
    """The idempotency key was already used for a different charge."""


def to_millis(moment: datetime) -> datetime:
    """The gateway answers decision times to the millisecond (and stored sales keep
    milliseconds): a replayed decision time must equal the one first answered, or a retry
    would publish another sold_at."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class PaymentGateway(Protocol):
    async def charge(self, request: ChargeRequest) -> ChargeResult: ...

    async def void(self, key: str) -> None:
        """Cancel whatever the key charged, if anything; a later charge with it is new."""
        ...
