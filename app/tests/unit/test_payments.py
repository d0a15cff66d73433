import asyncio
import dataclasses
from decimal import Decimal

import pytest

from checkout.domain import PaymentMethod
from checkout.gateway import SandboxGateway
from checkout.payments import ChargeConflict, ChargeOutcome, ChargeRequest
from tests.unit.conftest import HarnessFactory


def card_checkout(h, cart_id: str, key: str):  # type: ignore[no-untyped-def]
    return h.client.post(
        f"/carts/{cart_id}/checkout",
        json={"payment": "Credit card"},
        headers={"Idempotency-Key": key},
    )


def test_declined_payment_leaves_no_sale_and_no_stock_change(
    make_harness: HarnessFactory, product_id: str
) -> None:
    harness = make_harness(decline_rate=1.0)
    cart_id = harness.cart_with(product_id)
    response = card_checkout(harness, cart_id, "declined")
    assert response.status_code == 402
    assert response.json()["detail"].startswith("payment declined (")
    assert harness.publisher.events == []
    assert harness.stock.movements == {}
    assert harness.gateway.captured() == []
    assert harness.client.get(f"/carts/{cart_id}").json()["status"] == "open"
    # The decline is the key's answer; paying again needs a new key.
    replay = card_checkout(harness, cart_id, "declined")
    assert (replay.status_code, replay.json()) == (402, response.json())


def test_cash_is_never_declined(make_harness: HarnessFactory, product_id: str) -> None:
    harness = make_harness(decline_rate=1.0, timeout_rate=1.0)
    cart_id = harness.cart_with(product_id)
    response = harness.client.post(
        f"/carts/{cart_id}/checkout", json={"payment": "Cash"}, headers={"Idempotency-Key": "c"}
    )
    assert response.status_code == 201


def test_timed_out_payment_leaves_no_sale_no_stock_change_and_no_charge(
    make_harness: HarnessFactory, product_id: str
) -> None:
    harness = make_harness(timeout_rate=1.0)
    cart_id = harness.cart_with(product_id)
    for _ in range(3):  # whether or not the gateway charged before hanging
        response = card_checkout(harness, cart_id, "slow")
        assert response.status_code == 504
        assert "nothing was charged or sold" in response.json()["detail"]
    assert harness.publisher.events == []
    assert harness.stock.movements == {}
    assert harness.gateway.captured() == []
    assert harness.client.get(f"/carts/{cart_id}").json()["status"] == "open"


def test_retry_after_a_timeout_completes_and_charges_once(
    make_harness: HarnessFactory, product_id: str
) -> None:
    harness = make_harness(timeout_rate=1.0)
    cart_id = harness.cart_with(product_id)
    assert card_checkout(harness, cart_id, "flaky").status_code == 504
    harness.gateway._timeout_rate = 0.0  # the gateway recovers
    assert card_checkout(harness, cart_id, "flaky").status_code == 201
    assert len(harness.gateway.captured()) == 1
    assert len(harness.publisher.events) == 1


def _gateway(**rates: float) -> SandboxGateway:
    return SandboxGateway(
        seed=42,
        median_latency_s=0.0,
        decline_rate=rates.get("decline", 0.0),
        timeout_rate=rates.get("timeout", 0.0),
        hang_s=0.0,
    )


def _request(key: str, amount: str = "10.00") -> ChargeRequest:
    return ChargeRequest(key, Decimal(amount), PaymentMethod.CREDIT_CARD, f"inv-{key}", "fp")


def test_same_key_is_charged_once_and_other_amounts_are_refused() -> None:
    gateway = _gateway()

    async def scenario() -> None:
        first = await gateway.charge(_request("k"))
        assert not first.replayed
        again = await gateway.charge(_request("k"))
        assert again.replayed
        assert dataclasses.replace(again, replayed=False) == first
        with pytest.raises(ChargeConflict):
            await gateway.charge(_request("k", "11.00"))

    asyncio.run(scenario())
    assert len(gateway.captured()) == 1


def test_seeded_declines_are_reproducible_and_near_the_rate() -> None:
    def outcomes() -> list[ChargeOutcome]:
        gateway = _gateway(decline=0.2)

        async def run() -> list[ChargeOutcome]:
            return [(await gateway.charge(_request(str(i)))).outcome for i in range(1000)]

        return asyncio.run(run())

    first = outcomes()
    assert first == outcomes()
    assert 150 < first.count(ChargeOutcome.DECLINED) < 250


def test_same_key_with_another_fingerprint_is_refused() -> None:
    gateway = _gateway()
    request = _request("k")

    async def scenario() -> None:
        await gateway.charge(request)
        with pytest.raises(ChargeConflict):
            await gateway.charge(dataclasses.replace(request, fingerprint="another-request"))

    asyncio.run(scenario())


def test_two_concurrent_charges_with_one_key_make_one_charge() -> None:
    gateway = SandboxGateway(
        seed=1, median_latency_s=0.01, decline_rate=0.0, timeout_rate=0.0, hang_s=0.0
    )

    async def race() -> list[bool]:
        results = await asyncio.gather(*(gateway.charge(_request("k")) for _ in range(5)))
        assert len({r.charge_id for r in results}) == 1
        return [r.replayed for r in results]

    assert sorted(asyncio.run(race())) == [False, True, True, True, True]
    assert len(gateway.captured()) == 1


def test_a_void_makes_the_next_charge_with_the_key_new() -> None:
    gateway = _gateway()

    async def scenario() -> None:
        first = await gateway.charge(_request("k"))
        await gateway.void("k")
        await gateway.void("k")  # idempotent
        second = await gateway.charge(_request("k", "12.00"))
        assert (second.replayed, second.charge_id == first.charge_id) == (False, False)

    asyncio.run(scenario())
    assert len(gateway.captured()) == 1
