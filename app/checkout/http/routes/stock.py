"""Stock levels per branch and product, and deliveries (restocks)."""

from __future__ import annotations

from fastapi import APIRouter

from checkout.domain import Branch
from checkout.http.deps import ERRORS, IdempotencyKey, ProductPath, Service
from checkout.inventory import StockLevel
from checkout.models import RestockRequest, StockOut

router = APIRouter(prefix="/stock", tags=["inventory"], responses=ERRORS)


def _out(level: StockLevel) -> StockOut:
    return StockOut(
        branch=level.branch, product_id=level.product_id, level=level.level, negative=level.negative
    )


@router.get("/{branch}/{product_id}")
async def stock(service: Service, branch: Branch, product_id: ProductPath) -> StockOut:
    return _out(await service.stock_level(branch, product_id))


@router.post("/{branch}/{product_id}/restock")
async def restock(
    service: Service,
    branch: Branch,
    product_id: ProductPath,
    body: RestockRequest,
    idempotency_key: IdempotencyKey,
) -> StockOut:
    """Add a delivery to the branch's stock. A retry with the same Idempotency-Key adds it
    once; the answer is the level after it."""
    return _out(await service.restock(branch, product_id, idempotency_key, body.quantity))
