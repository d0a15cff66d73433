"""The catalog: branches and products (from the dataset, in memory)."""

from __future__ import annotations

from fastapi import APIRouter

from checkout.domain import CITY_BY_BRANCH, Branch, ProductLine
from checkout.http.deps import ERRORS, Service
from checkout.models import BranchOut, ProductOut

router = APIRouter(tags=["catalog"], responses=ERRORS)


@router.get("/branches")
async def branches() -> list[BranchOut]:
    return [BranchOut(branch=b, city=CITY_BY_BRANCH[b]) for b in Branch]


@router.get("/products")
async def products(service: Service, product_line: ProductLine | None = None) -> list[ProductOut]:
    return [
        ProductOut(product_id=p.product_id, product_line=p.product_line, unit_price=p.unit_price)
        for p in service.catalog
        if product_line is None or p.product_line is product_line
    ]
