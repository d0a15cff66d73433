"""Bad API input gets a 4xx with a message that says what is wrong, and writes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cassandra import ConsistencyLevel
from cassandra.query import SimpleStatement
from checkout.domain import STORE_TZ
from checkout.idempotency import invoice_id_for

from .lab import Inventory, http


@pytest.fixture(scope="module")
def api(lab: Inventory) -> str:
    return lab.address(lab.app_host_of("Yangon"))


@pytest.fixture
def cart(lab: Inventory, api: str) -> dict[str, Any]:
    reply = http(api, "POST", "/carts", json_body={"branch": lab.branch_of("Yangon")})
    assert reply.status == 201, reply.body
    return dict(reply.body)


def _assert_cart_empty(api: str, cart_id: str) -> None:
    reply = http(api, "GET", f"/carts/{cart_id}")
    assert reply.status == 200, reply.body
    assert reply.body["lines"] == [], f"the refused request changed the cart: {reply.body}"
    assert reply.body["status"] == "open"


def test_unknown_branch_is_refused(api: str) -> None:
    reply = http(api, "POST", "/carts", json_body={"branch": "Z"})
    assert reply.status == 422, reply.body
    assert "branch" in reply.body["detail"]
    assert "cart_id" not in reply.body


@pytest.mark.parametrize("quantity", [0, -3])
def test_zero_or_negative_quantity_is_refused(api: str, cart: dict[str, Any], quantity: int) -> None:
    product = http(api, "GET", "/products").body[0]["product_id"]
    reply = http(
        api, "POST", f"/carts/{cart['cart_id']}/items",
        json_body={"product_id": product, "quantity": quantity},
    )  # fmt: skip
    assert reply.status == 422, reply.body
    assert "quantity" in reply.body["detail"]
    assert "greater than 0" in reply.body["detail"]
    _assert_cart_empty(api, cart["cart_id"])


def test_unknown_product_is_refused(api: str, cart: dict[str, Any]) -> None:
    reply = http(
        api, "POST", f"/carts/{cart['cart_id']}/items",
        json_body={"product_id": "zz-00000000", "quantity": 1},
    )  # fmt: skip
    assert reply.status == 422, reply.body
    assert "unknown product_id 'zz-00000000'" in reply.body["detail"]
    assert "GET /products" in reply.body["detail"]
    _assert_cart_empty(api, cart["cart_id"])


def test_malformed_json_is_refused(api: str, cart: dict[str, Any]) -> None:
    reply = http(api, "POST", f"/carts/{cart['cart_id']}/items", raw=b'{"product_id": "hb-')
    assert reply.status == 400, reply.body
    assert "not valid JSON" in reply.body["detail"]
    _assert_cart_empty(api, cart["cart_id"])


def test_oversized_body_is_refused(api: str, cart: dict[str, Any]) -> None:
    padding = "x" * 70_000
    raw = ('{"product_id": "' + padding + '", "quantity": 1}').encode()
    reply = http(api, "POST", f"/carts/{cart['cart_id']}/items", raw=raw)
    assert reply.status == 413, reply.body
    assert "larger than" in reply.body["detail"]
    _assert_cart_empty(api, cart["cart_id"])


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        (b'{"payment": "Cash"', 400, "not valid JSON"),
        (b'{"payment": "Bitcoin"}', 422, "payment"),
        (b'{"payment": "Cash", "rating": 11}', 422, "rating"),
        (('{"payment": "Cash", "x": "' + "y" * 70_000 + '"}').encode(), 413, "larger than"),
    ],
    ids=["malformed-json", "unknown-payment", "rating-out-of-range", "oversized"],
)
def test_bad_checkout_writes_no_sale_and_no_key(
    *, lab: Inventory, api: str, cart: dict[str, Any], dc_sessions: dict[str, Any], raw: bytes, status: int,
    message: str,
) -> None:  # fmt: skip
    since = datetime.now(UTC) - timedelta(minutes=1)
    product = http(api, "GET", "/products").body[0]["product_id"]
    added = http(api, "POST", f"/carts/{cart['cart_id']}/items",
                 json_body={"product_id": product, "quantity": 1})  # fmt: skip
    assert added.status == 200, added.body
    key = f"itest-bad-{uuid.uuid4()}"
    reply = http(api, "POST", f"/carts/{cart['cart_id']}/checkout", raw=raw,
                 headers={"Idempotency-Key": key})  # fmt: skip
    assert reply.status == status, reply.body
    assert message in reply.body["detail"]

    # No sale: the branch's sales partitions of the store days since just before the test
    # hold no row of the invoice the key would have named.
    session = dc_sessions["Yangon"]
    branch, invoice_id = lab.branch_of("Yangon"), invoice_id_for(key)
    days = sorted({since.astimezone(STORE_TZ).date(), datetime.now(STORE_TZ).date()})
    sales = SimpleStatement(
        "SELECT invoice_id FROM sales WHERE branch = %s AND day = %s AND sold_at >= %s",
        consistency_level=ConsistencyLevel.LOCAL_QUORUM,
    )
    stored = [r for day in days for r in session.execute(sales, (branch, day, since)) if r.invoice_id == invoice_id]
    assert stored == [], f"the refused checkout stored sale {invoice_id}"
    # No checkout record (the key lives in the cart's header once a checkout is accepted):
    # the cart is open, as the API shows it and as its home region's keyspace holds it.
    carts = f"{lab.home_keyspace(branch)}.carts"
    header = session.execute(
        SimpleStatement(
            f"SELECT status, invoice_id, checkout_key FROM {carts} WHERE cart_id = %s LIMIT 1",
            consistency_level=ConsistencyLevel.LOCAL_QUORUM,
        ),
        (cart["cart_id"],),
    ).one()
    assert header is not None, f"cart {cart['cart_id']} not in {carts}"
    assert (header.status, header.invoice_id, header.checkout_key) == ("open", None, None), header
    still = http(api, "GET", f"/carts/{cart['cart_id']}").body
    assert still["status"] == "open"
    assert still["invoice_id"] is None


def test_checkout_of_an_empty_cart_is_refused(api: str, cart: dict[str, Any]) -> None:
    reply = http(api, "POST", f"/carts/{cart['cart_id']}/checkout", json_body={"payment": "Cash"},
                 headers={"Idempotency-Key": str(uuid.uuid4())})  # fmt: skip
    assert reply.status == 409, reply.body
    assert "empty" in reply.body["detail"]


def test_checkout_without_idempotency_key_is_refused(api: str, cart: dict[str, Any]) -> None:
    reply = http(api, "POST", f"/carts/{cart['cart_id']}/checkout", json_body={"payment": "Cash"})
    assert reply.status == 400, reply.body
    assert "Idempotency-Key" in reply.body["detail"]
