from decimal import Decimal

import pytest

from checkout.catalog import Catalog
from checkout.idempotency import IdempotencyStatus, invoice_id_for
from tests.unit.conftest import Harness, HarnessFactory


def checkout(h: Harness, cart_id: str, key: str, **body: object):  # type: ignore[no-untyped-def]
    return h.client.post(
        f"/carts/{cart_id}/checkout",
        json={"payment": "Credit card", **body},
        headers={"Idempotency-Key": key},
    )


def test_cart_endpoints(harness: Harness, catalog: Catalog) -> None:
    first, second = list(catalog)[:2]
    cart_id = harness.new_cart("C")
    client = harness.client
    client.post(f"/carts/{cart_id}/items", json={"product_id": first.product_id, "quantity": 2})
    client.post(f"/carts/{cart_id}/items", json={"product_id": second.product_id, "quantity": 1})
    removed = client.delete(f"/carts/{cart_id}/items/{first.product_id}")
    assert removed.status_code == 200
    view = client.get(f"/carts/{cart_id}").json()
    assert view["city"] == "Naypyitaw"
    assert [line["product_id"] for line in view["lines"]] == [second.product_id]
    assert Decimal(view["total"]) == second.unit_price * Decimal("1.05")
    missing = client.delete(f"/carts/{cart_id}/items/{first.product_id}")
    assert missing.status_code == 404


def test_checkout_publishes_moves_stock_and_closes_the_cart(
    harness: Harness, product_id: str
) -> None:
    cart_id = harness.cart_with(product_id, quantity=3, branch="B")
    response = checkout(harness, cart_id, "key-1", customer_type="Member", gender="Female")
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["invoice_id"] == invoice_id_for("key-1")
    assert receipt["branch"] == "B"
    assert receipt["lines"][0]["stock_level"] == 97
    assert receipt["lines"][0]["stock_negative"] is False
    assert receipt["gross_margin_pct"] == "4.761904762"

    (event,) = harness.publisher.events
    assert event.invoice_id == receipt["invoice_id"]
    assert event.source == "api"
    assert event.stock_moved, "the API stores the movements before publishing"
    assert event.region == "Yangon"
    assert str(event.total) == receipt["total"]
    assert event.sold_at.isoformat().replace("+00:00", "Z") == receipt["sold_at"]
    assert [(m.product_id, m.delta) for m in harness.stock.movements.values()] == [(product_id, -3)]
    assert harness.idempotency.records["key-1"].status is IdempotencyStatus.COMPLETED
    assert harness.client.get(f"/carts/{cart_id}").json()["status"] == "checked_out"

    again = checkout(harness, cart_id, "key-2")
    assert again.status_code == 409
    assert receipt["invoice_id"] in again.json()["detail"]


def test_a_sale_is_never_refused_for_stock(make_harness: HarnessFactory, product_id: str) -> None:
    harness = make_harness(initial_stock=1)
    cart_id = harness.cart_with(product_id, quantity=5)
    response = checkout(harness, cart_id, "short-stock")
    assert response.status_code == 201
    line = response.json()["lines"][0]
    assert (line["stock_level"], line["stock_negative"]) == (-4, True)
    stock = harness.client.get(f"/stock/A/{product_id}").json()
    assert stock == {"branch": "A", "product_id": product_id, "level": -4, "negative": True}


@pytest.mark.parametrize(
    ("failing", "message", "moved_before_retry"),
    [
        # The payment was approved: the goods left with the shopper, so the stock moved.
        ("publisher", "could not be confirmed by Kafka", 1),
        ("stock", "stock movement could not be stored", 0),
    ],
)
def test_a_step_failing_after_payment_keeps_the_charge_and_a_retry_finishes_once(
    harness: Harness, product_id: str, failing: str, message: str, moved_before_retry: int
) -> None:
    cart_id = harness.cart_with(product_id)
    getattr(harness, failing).failures_left = 1
    failed = checkout(harness, cart_id, "key-retry")
    assert failed.status_code == 503
    assert failed.headers["Retry-After"] == "1"
    assert message in failed.json()["detail"]
    assert "retry with the same Idempotency-Key" in failed.json()["detail"]
    assert harness.publisher.events == []
    assert len(harness.stock.movements) == moved_before_retry

    retried = checkout(harness, cart_id, "key-retry")
    assert retried.status_code == 201
    assert len(harness.publisher.events) == 1
    assert len(harness.gateway.captured()) == 1
    assert len(harness.stock.movements) == 1


def test_health_and_readiness(harness: Harness) -> None:
    assert harness.client.get("/healthz").json() == {"status": "ok"}
    assert harness.client.get("/readyz").json() == {"status": "ready"}


def test_metrics_count_requests_by_route_template(harness: Harness, product_id: str) -> None:
    harness.cart_with(product_id)
    text = harness.client.get("/metrics").text
    assert 'checkout_http_requests_total{endpoint="/carts/{cart_id}/items",method="POST",' in text
    assert "checkout_http_request_duration_seconds_bucket" in text
