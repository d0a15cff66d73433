"""Idempotency-Key handling for checkouts.

The key decides the invoice id (a UUIDv5 of the key), so every retry of one checkout,
even two racing ones, names the same invoice, and every write downstream is keyed by
it. The stored record keeps a hash of the request, not the request: a retry with the
same key and the same request gets the first answer back; a different request under a
used key is refused rather than silently answered with someone else's receipt.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

# The header may carry any printable ASCII token up to 255 characters (UUIDs, ULIDs, ...).
_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
_INVOICE_NAMESPACE = uuid.UUID("6f1c3c2e-6a35-4c8e-9a3e-5b0d7c1f2a90")


class IdempotencyStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    DECLINED = "declined"


class InvalidIdempotencyKey(ValueError):
    pass


class IdempotencyConflict(Exception):
    """The key was used before for a different request."""


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    key: str
    request_hash: str
    invoice_id: str
    status: IdempotencyStatus
    created_at: datetime
    response_status: int | None = None
    response_body: str | None = None


class IdempotencyStore(Protocol):
    async def get(self, key: str) -> IdempotencyRecord | None: ...

    async def put(self, record: IdempotencyRecord) -> None: ...


def validate_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise InvalidIdempotencyKey(
            "the Idempotency-Key header is required for checkout; send a fresh UUID per "
            "checkout and reuse it only when retrying that checkout"
        )
    if not _KEY_RE.match(key):
        raise InvalidIdempotencyKey(
            "Idempotency-Key must be 1 to 255 printable ASCII characters without spaces"
        )
    return key


def request_hash(cart_id: str, body: dict[str, Any]) -> str:
    """Hash of what the checkout asks for, insensitive to JSON key order and spacing."""
    canonical = json.dumps(
        {"cart_id": cart_id, "body": body}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def invoice_id_for(key: str) -> str:
    return str(uuid.uuid5(_INVOICE_NAMESPACE, key))


def check_reuse(record: IdempotencyRecord | None, expected_hash: str) -> IdempotencyRecord | None:
    """Return the record to answer from, None to proceed, or refuse a different request."""
    if record is None:
        return None
    if record.request_hash != expected_hash:
        raise IdempotencyConflict(
            f"Idempotency-Key {record.key!r} was already used for a different checkout request "
            f"(invoice {record.invoice_id}); use a new key for a new request"
        )
    if record.status is IdempotencyStatus.PENDING:
        # A previous attempt stopped half-way (timeout, crash): every step is keyed by the
        # invoice id and the charge by the key, so running it again is safe.
        return None
    return record
