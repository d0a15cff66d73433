"""Cart rules (pure): a cart belongs to one branch, holds catalog products with positive
quantities, and is frozen once checked out."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol

from checkout.catalog import Catalog, Product
from checkout.domain import Branch
from checkout.pricing import InvoicePrice, LinePrice, price_invoice, price_line

# A till scans at most this many of one product and this many distinct products; larger
# orders are wholesale and go through another channel.
MAX_QUANTITY_PER_LINE = 1000
MAX_LINES = 100


class CartStatus(StrEnum):
    OPEN = "open"
    CHECKED_OUT = "checked_out"


class CartError(Exception):
    """A cart rule was broken; the message is meant for the API client."""


class CartNotFound(CartError):
    pass


class CartClosed(CartError):
    pass


class UnknownProduct(CartError):
    pass


class ItemNotInCart(CartError):
    pass


class CartLimitExceeded(CartError):
    pass


class EmptyCart(CartError):
    pass


@dataclass(frozen=True, slots=True)
class CheckoutRecord:
    """What a finished checkout of the cart answered, and under which key and request:
    a retry with the key is answered from it."""

    key: str
    request_hash: str
    response_status: int
    response_body: str


@dataclass(frozen=True, slots=True)
class Cart:
    cart_id: str
    branch: Branch
    created_at: datetime
    items: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    status: CartStatus = CartStatus.OPEN
    invoice_id: str | None = None
    checkout: CheckoutRecord | None = None


@dataclass(frozen=True, slots=True)
class PricedLine:
    product: Product
    price: LinePrice


@dataclass(frozen=True, slots=True)
class PricedCart:
    cart: Cart
    lines: tuple[PricedLine, ...]
    totals: InvoicePrice


class CartStore(Protocol):
    """Carts by id. Changes are written as what changed (an item added, a product
    removed, the checkout record), never as a read-modify-write of the whole cart."""

    async def get(self, cart_id: str, *, fresh: bool = False) -> Cart | None:
        """The cart; `fresh` reads the database even if a recent copy is at hand."""
        ...

    async def create(self, cart: Cart) -> None: ...

    async def add(self, cart: Cart, product_id: str, quantity: int) -> None:
        """Record `quantity` more of a product; `cart` is the cart with it added."""
        ...

    async def remove(self, cart: Cart, product_id: str) -> None:
        """Record the product's removal; `cart` is the cart without it."""
        ...

    async def close(self, cart: Cart) -> None:
        """Store the checked-out cart's status, invoice and checkout record."""
        ...


def new_cart(branch: Branch, now: datetime) -> Cart:
    return Cart(cart_id=str(uuid.uuid4()), branch=branch, created_at=now)


def _require_open(cart: Cart) -> None:
    if cart.status is not CartStatus.OPEN:
        raise CartClosed(
            f"cart {cart.cart_id} was already checked out as invoice {cart.invoice_id}; "
            "create a new cart"
        )


def _with_items(cart: Cart, items: dict[str, int]) -> Cart:
    return replace(cart, items=MappingProxyType(items))


def lookup_product(catalog: Catalog, product_id: str) -> Product:
    product = catalog.get(product_id)
    if product is None:
        raise UnknownProduct(f"unknown product_id {product_id!r}; GET /products lists the catalog")
    return product


def add_item(cart: Cart, catalog: Catalog, product_id: str, quantity: int) -> Cart:
    """Add `quantity` of a product; adding a product already in the cart adds to its line."""
    _require_open(cart)
    if quantity <= 0:
        raise CartLimitExceeded(f"quantity must be at least 1, got {quantity}")
    lookup_product(catalog, product_id)
    items = dict(cart.items)
    if product_id not in items and len(items) >= MAX_LINES:
        raise CartLimitExceeded(f"a cart holds at most {MAX_LINES} distinct products")
    new_quantity = items.get(product_id, 0) + quantity
    if new_quantity > MAX_QUANTITY_PER_LINE:
        raise CartLimitExceeded(
            f"at most {MAX_QUANTITY_PER_LINE} of one product per cart; "
            f"the cart would hold {new_quantity} of {product_id}"
        )
    items[product_id] = new_quantity
    return _with_items(cart, items)


def remove_item(cart: Cart, product_id: str) -> Cart:
    """Remove a product's whole line from the cart."""
    _require_open(cart)
    if product_id not in cart.items:
        raise ItemNotInCart(f"product {product_id!r} is not in cart {cart.cart_id}")
    items = {pid: qty for pid, qty in cart.items.items() if pid != product_id}
    return _with_items(cart, items)


def price_cart(cart: Cart, catalog: Catalog) -> PricedCart:
    lines = tuple(
        PricedLine(product, price_line(product.unit_price, quantity))
        for product, quantity in (
            (lookup_product(catalog, pid), qty) for pid, qty in cart.items.items()
        )
    )
    return PricedCart(cart=cart, lines=lines, totals=price_invoice(line.price for line in lines))


def close_cart(cart: Cart, invoice_id: str, record: CheckoutRecord) -> Cart:
    return replace(cart, status=CartStatus.CHECKED_OUT, invoice_id=invoice_id, checkout=record)


def ready_for_checkout(cart: Cart) -> None:
    _require_open(cart)
    if not cart.items:
        raise EmptyCart(f"cart {cart.cart_id} is empty; add a product before checking out")
