from datetime import UTC, datetime
from decimal import Decimal

import pytest

from checkout.cart import (
    MAX_QUANTITY_PER_LINE,
    CartClosed,
    CartLimitExceeded,
    CartStatus,
    CheckoutRecord,
    EmptyCart,
    ItemNotInCart,
    UnknownProduct,
    add_item,
    close_cart,
    new_cart,
    price_cart,
    ready_for_checkout,
    remove_item,
)
from checkout.catalog import Catalog
from checkout.domain import Branch

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_add_view_and_remove(catalog: Catalog) -> None:
    first, second = list(catalog)[:2]
    cart = new_cart(Branch.B, NOW)
    cart = add_item(cart, catalog, first.product_id, 2)
    cart = add_item(cart, catalog, second.product_id, 1)
    cart = add_item(cart, catalog, first.product_id, 3)
    assert dict(cart.items) == {first.product_id: 5, second.product_id: 1}
    priced = price_cart(cart, catalog)
    expected = (first.unit_price * 5 + second.unit_price) * Decimal("1.05")
    assert priced.totals.total == expected
    cart = remove_item(cart, first.product_id)
    assert dict(cart.items) == {second.product_id: 1}


def test_operations_do_not_mutate_the_previous_cart(catalog: Catalog, product_id: str) -> None:
    empty = new_cart(Branch.A, NOW)
    add_item(empty, catalog, product_id, 1)
    assert dict(empty.items) == {}


def test_unknown_product_is_refused_with_a_hint(catalog: Catalog) -> None:
    with pytest.raises(UnknownProduct, match="GET /products lists the catalog"):
        add_item(new_cart(Branch.A, NOW), catalog, "nope-123", 1)


def test_quantity_limits(catalog: Catalog, product_id: str) -> None:
    cart = new_cart(Branch.A, NOW)
    with pytest.raises(CartLimitExceeded, match="at least 1"):
        add_item(cart, catalog, product_id, 0)
    cart = add_item(cart, catalog, product_id, MAX_QUANTITY_PER_LINE)
    with pytest.raises(CartLimitExceeded, match=f"at most {MAX_QUANTITY_PER_LINE}"):
        add_item(cart, catalog, product_id, 1)


def test_removing_what_is_not_there(catalog: Catalog, product_id: str) -> None:
    with pytest.raises(ItemNotInCart):
        remove_item(new_cart(Branch.A, NOW), product_id)


def test_checked_out_cart_is_frozen(catalog: Catalog, product_id: str) -> None:
    cart = add_item(new_cart(Branch.C, NOW), catalog, product_id, 1)
    record = CheckoutRecord("key-1", "hash", 201, "{}")
    closed = close_cart(cart, "inv-1", record)
    assert closed.checkout == record
    assert closed.status is CartStatus.CHECKED_OUT
    for change in (
        lambda: add_item(closed, catalog, product_id, 1),
        lambda: remove_item(closed, product_id),
        lambda: ready_for_checkout(closed),
    ):
        with pytest.raises(CartClosed, match="inv-1"):
            change()


def test_empty_cart_cannot_check_out() -> None:
    with pytest.raises(EmptyCart):
        ready_for_checkout(new_cart(Branch.A, NOW))
