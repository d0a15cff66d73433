import asyncio
from collections.abc import Mapping

import httpx2

from checkout.idempotency import request_hash
from checkout.models import CheckoutRequest
from tests.unit.conftest import Harness


def post(h: Harness, cart_id: str, key: str, body: Mapping[str, object]) -> httpx2.Response:
    return h.client.post(f"/carts/{cart_id}/checkout", json=body, headers={"Idempotency-Key": key})


def test_same_key_same_body_returns_the_same_invoice_and_charges_once(
    harness: Harness, product_id: str
) -> None:
    cart_id = harness.cart_with(product_id)
    body = {"payment": "Ewallet", "gender": "Male"}
    first = post(harness, cart_id, "retry-me", body)
    second = post(harness, cart_id, "retry-me", {"gender": "Male", "payment": "Ewallet"})
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(harness.gateway.captured()) == 1
    assert len(harness.publisher.events) == 1
    assert len(harness.stock.movements) == 1


def test_same_key_different_body_is_refused(harness: Harness, product_id: str) -> None:
    cart_id = harness.cart_with(product_id)
    assert post(harness, cart_id, "one-key", {"payment": "Cash"}).status_code == 201
    refused = post(harness, cart_id, "one-key", {"payment": "Credit card"})
    assert refused.status_code == 409
    assert "already used for a different checkout request" in refused.json()["detail"]
    assert len(harness.publisher.events) == 1
    assert len(harness.gateway.captured()) == 1


def test_key_reused_for_another_cart_is_refused(harness: Harness, product_id: str) -> None:
    first_cart = harness.cart_with(product_id)
    other_cart = harness.cart_with(product_id)
    assert post(harness, first_cart, "k", {"payment": "Cash"}).status_code == 201
    assert post(harness, other_cart, "k", {"payment": "Cash"}).status_code == 409


def test_racing_retries_charge_once_and_name_one_invoice(harness: Harness, product_id: str) -> None:
    cart_id = harness.cart_with(product_id)
    request = CheckoutRequest.model_validate({"payment": "Credit card"})

    async def race() -> list[int]:
        outcomes = await asyncio.gather(
            *(harness.service.checkout(cart_id, "raced", request) for _ in range(5))
        )
        return [o.status for o in outcomes]

    assert asyncio.run(race()) == [201] * 5
    assert len(harness.gateway.captured()) == 1
    # Every racer published, but all the same event: the consumer stores it once.
    assert len({e.to_json_bytes() for e in harness.publisher.events}) == 1
    assert len(harness.stock.movements) == 1


def test_request_hash_ignores_key_order_but_not_content() -> None:
    a = request_hash("c1", {"payment": "Cash", "gender": None})
    assert a == request_hash("c1", {"gender": None, "payment": "Cash"})
    assert a != request_hash("c2", {"payment": "Cash", "gender": None})
    assert a != request_hash("c1", {"payment": "Ewallet", "gender": None})


def test_malformed_key_is_refused(harness: Harness, product_id: str) -> None:
    cart_id = harness.cart_with(product_id)
    response = post(harness, cart_id, "has space", {"payment": "Cash"})
    assert response.status_code == 400
    assert "printable ASCII" in response.json()["detail"]
