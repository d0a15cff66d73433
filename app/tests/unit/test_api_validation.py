"""Bad input gets a 4xx with a clear message and writes nothing."""

from collections.abc import Iterator

import pytest

from tests.unit.conftest import Harness


def assert_nothing_written(h: Harness, carts_before: int) -> None:
    assert len(h.carts.carts) == carts_before
    assert h.publisher.events == []
    assert h.stock.movements == {}
    assert "close" not in h.carts.writes


def test_unknown_branch(harness: Harness) -> None:
    response = harness.client.post("/carts", json={"branch": "Z"})
    assert response.status_code == 422
    assert response.json()["detail"] == "invalid request: branch: Input should be 'A', 'B' or 'C'"
    assert_nothing_written(harness, 0)


@pytest.mark.parametrize("quantity", [0, -1])
def test_zero_or_negative_quantity(harness: Harness, product_id: str, quantity: int) -> None:
    cart_id = harness.new_cart()
    before = dict(harness.carts.carts)
    response = harness.client.post(
        f"/carts/{cart_id}/items", json={"product_id": product_id, "quantity": quantity}
    )
    assert response.status_code == 422
    assert "quantity: Input should be greater than 0" in response.json()["detail"]
    assert harness.carts.carts == before
    assert_nothing_written(harness, 1)


def test_quantity_as_string_is_not_coerced(harness: Harness, product_id: str) -> None:
    cart_id = harness.new_cart()
    response = harness.client.post(
        f"/carts/{cart_id}/items", json={"product_id": product_id, "quantity": "2"}
    )
    assert response.status_code == 422
    assert "quantity: Input should be a valid integer" in response.json()["detail"]


def test_an_integral_number_is_an_integer_in_json(harness: Harness, product_id: str) -> None:
    cart_id = harness.new_cart()
    response = harness.client.post(
        f"/carts/{cart_id}/items", json={"product_id": product_id, "quantity": 2.0}
    )
    assert response.status_code == 200, response.text
    for bad in (2.5, True):
        refused = harness.client.post(
            f"/carts/{cart_id}/items", json={"product_id": product_id, "quantity": bad}
        )
        assert refused.status_code == 422, bad


def test_unknown_product(harness: Harness) -> None:
    cart_id = harness.new_cart()
    response = harness.client.post(
        f"/carts/{cart_id}/items", json={"product_id": "xx-00000000", "quantity": 1}
    )
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "unknown product_id 'xx-00000000'; GET /products lists the catalog"
    )
    assert dict(harness.carts.carts[cart_id].items) == {}


def test_unknown_payment_method(harness: Harness, product_id: str) -> None:
    cart_id = harness.cart_with(product_id)
    response = harness.client.post(
        f"/carts/{cart_id}/checkout",
        json={"payment": "Bitcoin"},
        headers={"Idempotency-Key": "k-bitcoin"},
    )
    assert response.status_code == 422
    assert (
        "payment: Input should be 'Cash', 'Credit card' or 'Ewallet'" in response.json()["detail"]
    )
    assert harness.publisher.events == []
    assert "close" not in harness.carts.writes


def test_malformed_json(harness: Harness) -> None:
    response = harness.client.post(
        "/carts", content=b'{"branch": "A"', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "request body is not valid JSON"
    assert_nothing_written(harness, 0)


def test_unknown_field_is_refused(harness: Harness) -> None:
    response = harness.client.post("/carts", json={"branch": "A", "discount": 50})
    assert response.status_code == 422
    assert "discount: Extra inputs are not permitted" in response.json()["detail"]


def test_oversized_body(harness: Harness) -> None:
    response = harness.client.post(
        "/carts",
        content=b'{"branch": "A", "pad": "' + b"x" * 5000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["detail"].startswith("request body larger than 4096 bytes")
    assert_nothing_written(harness, 0)


def test_oversized_chunked_body_without_length(harness: Harness) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"branch": "A", "pad": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    response = harness.client.post(
        "/carts", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert_nothing_written(harness, 0)


def test_unknown_and_malformed_cart_ids(harness: Harness) -> None:
    missing = harness.client.get("/carts/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404
    assert "does not exist" in missing.json()["detail"]
    malformed = harness.client.get("/carts/not-a-uuid")
    assert malformed.status_code == 422
    assert malformed.json()["detail"].startswith("invalid request: path.cart_id:")


def test_checkout_without_idempotency_key(harness: Harness, product_id: str) -> None:
    cart_id = harness.cart_with(product_id)
    response = harness.client.post(f"/carts/{cart_id}/checkout", json={"payment": "Cash"})
    assert response.status_code == 400
    assert "Idempotency-Key header is required" in response.json()["detail"]
    assert harness.publisher.events == []


def test_empty_cart_checkout(harness: Harness) -> None:
    cart_id = harness.new_cart()
    response = harness.client.post(
        f"/carts/{cart_id}/checkout", json={"payment": "Cash"}, headers={"Idempotency-Key": "k1"}
    )
    assert response.status_code == 409
    assert "is empty" in response.json()["detail"]
    assert harness.publisher.events == []
    assert len(harness.gateway.captured()) == 0


def test_openapi_spec_is_served(harness: Harness) -> None:
    spec = harness.client.get("/openapi.json").json()
    assert "/carts/{cart_id}/checkout" in spec["paths"]
    assert spec["info"]["title"] == "Supermarket checkout API"


@pytest.mark.parametrize(
    ("rating", "status"),
    [
        ("7.1", 201),
        (7.35, 201),
        (10, 201),
        (None, 201),
        ("11", 422),
        ("7.15", 422),
        (True, 422),
        (8.3e307, 422),
        (-0.1, 422),
    ],
)
def test_a_rating_is_a_number_or_a_decimal_string_from_0_to_10(
    harness: Harness, product_id: str, rating: object, status: int
) -> None:
    cart_id = harness.cart_with(product_id)
    response = harness.client.post(
        f"/carts/{cart_id}/checkout",
        json={"payment": "Cash", "rating": rating},
        headers={"Idempotency-Key": f"rating-{rating}"},
    )
    assert response.status_code == status, response.text
