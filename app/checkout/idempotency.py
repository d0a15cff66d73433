"""Idempotency-Key handling for checkouts.

The key decides the invoice id (a UUIDv5 of the key), so every retry of one checkout,
even two racing ones, names the same invoice, and every write downstream is keyed by
it. A finished checkout keeps its record in the cart (a hash of the request, not the
request, and the answer): a retry with the same key and the same request gets the first
answer back; a different request under a used key is refused rather than silently
answered with someone else's receipt. The key is also the payment gateway's idempotency
key, with the request hash as its fingerprint, so the gateway refuses the key reused for
another cart or request before anything is charged, even while nothing is recorded yet.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import Any

from checkout.cart import Cart, CheckoutRecord, ready_for_checkout

# The header may carry any printable ASCII token up to 255 characters (UUIDs, ULIDs, ...).
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
_KEY_RE = re.compile(KEY_PATTERN)
_INVOICE_NAMESPACE = uuid.UUID("6f1c3c2e-6a35-4c8e-9a3e-5b0d7c1f2a90")


class InvalidIdempotencyKey(ValueError):
    pass


class IdempotencyConflict(Exception):
    """The key was used before for a different request."""


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


def answered(cart: Cart, key: str, expected_hash: str) -> CheckoutRecord | None:
    """The stored answer to replay, None to proceed, or refuse a different request.

    A cart checked out under another key is CartClosed; under this key with another
    request, IdempotencyConflict."""
    record = cart.checkout
    if record is None or record.key != key:
        ready_for_checkout(cart)
        return None
    if record.request_hash != expected_hash:
        raise IdempotencyConflict(
            f"Idempotency-Key {key!r} was already used for a different checkout request "
            f"(invoice {cart.invoice_id}); use a new key for a new request"
        )
    return record
