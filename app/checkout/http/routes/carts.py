"""Carts: create, view, add and remove products."""

from __future__ import annotations

from fastapi import APIRouter

from checkout.http.deps import ERRORS, CartId, ProductPath, Service
from checkout.models import AddItemRequest, CartOut, CreateCartRequest

router = APIRouter(prefix="/carts", tags=["cart"], responses=ERRORS)


@router.post("", status_code=201)
async def create_cart(service: Service, body: CreateCartRequest) -> CartOut:
    return await service.create_cart(body.branch)


@router.get("/{cart_id}")
async def view_cart(service: Service, cart_id: CartId) -> CartOut:
    return await service.view_cart(str(cart_id))


@router.post("/{cart_id}/items")
async def add_item(service: Service, cart_id: CartId, body: AddItemRequest) -> CartOut:
    return await service.add_item(str(cart_id), body.product_id, body.quantity)


@router.delete("/{cart_id}/items/{product_id}")
async def remove_item(service: Service, cart_id: CartId, product_id: ProductPath) -> CartOut:
    return await service.remove_item(str(cart_id), product_id)
