"""Checkout: pay for a cart and record the sale."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from checkout.http.deps import ERRORS, CartId, IdempotencyKey, Service
from checkout.models import CheckoutRequest, ReceiptOut

router = APIRouter(tags=["checkout"], responses=ERRORS)


@router.post("/carts/{cart_id}/checkout", status_code=201, response_model=ReceiptOut)
async def checkout(
    service: Service,
    cart_id: CartId,
    body: CheckoutRequest,
    idempotency_key: IdempotencyKey,
) -> JSONResponse:
    """Pay for the cart and record the sale. Answers once Kafka acknowledged it.

    A retry with the same Idempotency-Key and body returns the same invoice and charges
    once (header Idempotent-Replayed: true); the same key with another body is refused.
    """
    outcome = await service.checkout(str(cart_id), idempotency_key, body)
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return JSONResponse(outcome.body, status_code=outcome.status, headers=headers)
