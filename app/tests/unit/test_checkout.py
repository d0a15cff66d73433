from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from checkout.catalog import Catalog
from checkout.domain import CheckoutStage
from checkout.idempotency import invoice_id_for
from checkout.payments import PaymentTimeout
from tests.unit.conftest import Harness, HarnessFactory

STAGES = tuple(stage.value for stage in CheckoutStage)


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
    assert "stock_level" not in receipt["lines"][0]
    assert receipt["gross_margin_pct"] == "4.761904762"

    (event,) = harness.publisher.events
    assert event.invoice_id == receipt["invoice_id"]
    assert event.source == "api"
    assert event.stock_moved, "the API moves the stock of its sales"
    assert event.region == "Yangon"
    assert str(event.total) == receipt["total"]
    assert event.sold_at.isoformat().replace("+00:00", "Z") == receipt["sold_at"]
    assert [(m.product_id, m.delta) for m in harness.stock.movements.values()] == [(product_id, -3)]
    closed = harness.carts.carts[cart_id]
    assert closed.checkout is not None
    assert closed.checkout.key == "key-1"
    assert harness.client.get(f"/carts/{cart_id}").json()["status"] == "checked_out"
    # One write per cart change and one for the checkout record: no read-modify-write.
    assert harness.carts.writes == ["create", "add", "close"]

    again = checkout(harness, cart_id, "key-2")
    assert again.status_code == 409
    assert receipt["invoice_id"] in again.json()["detail"]


def test_a_sale_is_never_refused_for_stock(make_harness: HarnessFactory, product_id: str) -> None:
    harness = make_harness(initial_stock=1)
    cart_id = harness.cart_with(product_id, quantity=5)
    response = checkout(harness, cart_id, "short-stock")
    assert response.status_code == 201
    stock = harness.client.get(f"/stock/A/{product_id}").json()
    assert stock == {"branch": "A", "product_id": product_id, "level": -4, "negative": True}


@pytest.mark.parametrize(
    ("failing", "message", "published_before_retry"),
    [
        # Stock and the publish run together: either may land while the other fails.
        ("publisher.failures_left", "could not be confirmed by Kafka", 0),
        ("stock.failures_left", "stock movement could not be stored", 1),
        # The sale is durable, but without the record a retry would not be answered.
        ("carts.close_failures_left", "checkout record could not be stored", 1),
    ],
)
def test_a_step_failing_after_payment_keeps_the_charge_and_a_retry_finishes_once(
    harness: Harness, product_id: str, failing: str, message: str, published_before_retry: int
) -> None:
    cart_id = harness.cart_with(product_id)
    fake, attribute = failing.split(".")
    setattr(getattr(harness, fake), attribute, 1)
    failed = checkout(harness, cart_id, "key-retry")
    assert failed.status_code == 503
    assert failed.headers["Retry-After"] == "1"
    assert message in failed.json()["detail"]
    assert "retry with the same Idempotency-Key" in failed.json()["detail"]
    assert len(harness.publisher.events) == published_before_retry
    assert harness.carts.carts[cart_id].checkout is None, "no record before the sale is whole"

    retried = checkout(harness, cart_id, "key-retry")
    assert retried.status_code == 201
    # A retried publish is the same event: the consumer stores it once.
    assert {e.invoice_id for e in harness.publisher.events} == {retried.json()["invoice_id"]}
    assert len(set(harness.publisher.events)) == 1
    assert len(harness.gateway.captured()) == 1
    assert len(harness.stock.movements) == 1


def test_restock_adds_once_per_key(harness: Harness, product_id: str) -> None:
    path = f"/stock/B/{product_id}/restock"
    first = harness.client.post(path, json={"quantity": 20}, headers={"Idempotency-Key": "d-1"})
    assert first.status_code == 200, first.text
    assert first.json()["level"] == 120
    again = harness.client.post(path, json={"quantity": 20}, headers={"Idempotency-Key": "d-1"})
    assert again.json()["level"] == 120
    other = harness.client.post(path, json={"quantity": 5}, headers={"Idempotency-Key": "d-2"})
    assert other.json()["level"] == 125


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ({"quantity": 0}, {"Idempotency-Key": "r"}, 422),
        ({"quantity": "5"}, {"Idempotency-Key": "r"}, 422),
        ({"quantity": 5}, {}, 400),
    ],
)
def test_a_bad_restock_is_refused_and_moves_nothing(
    harness: Harness, product_id: str, body: dict[str, object], headers: dict[str, str], status: int
) -> None:
    response = harness.client.post(f"/stock/A/{product_id}/restock", json=body, headers=headers)
    assert response.status_code == status, response.text
    assert harness.stock.movements == {}


def test_health_and_readiness(harness: Harness) -> None:
    assert harness.client.get("/healthz").json() == {"status": "ok"}
    assert harness.client.get("/readyz").json() == {"status": "ready"}


def test_metrics_count_requests_by_route_template(harness: Harness, product_id: str) -> None:
    harness.cart_with(product_id)
    text = harness.client.get("/metrics").text
    assert 'checkout_http_requests_total{endpoint="/carts/{cart_id}/items",method="POST",' in text
    assert "checkout_http_request_duration_seconds_bucket" in text


class _SilentGateway:
    """A gateway that cannot be reached at all: charges and voids both time out."""

    async def charge(self, request: object) -> object:
        raise PaymentTimeout("connection refused (fake)")

    async def void(self, key: str) -> None:
        raise PaymentTimeout("connection refused (fake)")


def test_an_unreachable_gateway_is_a_504_that_sells_nothing(
    harness: Harness, product_id: str
) -> None:
    cart_id = harness.cart_with(product_id)
    harness.service.gateway = _SilentGateway()  # type: ignore[assignment]
    response = checkout(harness, cart_id, "key-silent")
    assert response.status_code == 504, response.text
    assert "retry with the same Idempotency-Key" in response.json()["detail"]
    assert harness.publisher.events == []
    assert harness.stock.movements == {}
    assert harness.carts.carts[cart_id].checkout is None


def _stage_counts() -> dict[str, float]:
    return {
        stage: REGISTRY.get_sample_value("checkout_stage_duration_seconds_count", {"stage": stage})
        or 0.0
        for stage in STAGES
    }


def _timed_since(before: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """The stages timed since `before`, and the counts to measure the next step from."""
    now = _stage_counts()
    return {s: now[s] - before[s] for s in STAGES}, now


def test_each_stage_of_a_checkout_is_timed_once(
    make_harness: HarnessFactory, product_id: str
) -> None:
    sold, declined = make_harness(), make_harness(decline_rate=1.0)
    counts = _stage_counts()
    assert checkout(sold, sold.cart_with(product_id), "stages-1").status_code == 201
    timed, counts = _timed_since(counts)
    assert timed == dict(zip(STAGES, (1.0, 1.0, 1.0, 1.0), strict=True))
    # A decline stops at the charge: nothing is committed or closed.
    assert checkout(declined, declined.cart_with(product_id), "stages-2").status_code == 402
    timed, counts = _timed_since(counts)
    assert timed == dict(zip(STAGES, (1.0, 1.0, 0.0, 0.0), strict=True))
    # A replay answers from the cart's record and times only the cart's read.
    assert checkout(sold, next(iter(sold.carts.carts)), "stages-1").status_code == 201
    timed, counts = _timed_since(counts)
    assert timed == dict(zip(STAGES, (1.0, 0.0, 0.0, 0.0), strict=True))
