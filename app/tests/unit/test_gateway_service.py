"""The gateway as an HTTP service, and the checkout's HTTP client of it.

The service is driven through FastAPI's TestClient; the client adapter talks to the
real service app over httpx's ASGI transport, and to a uvicorn on 127.0.0.1 for what
only a network shows (timeouts, a refused connection).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from checkout.adapters.gateway_http import HttpPaymentGateway
from checkout.domain import PaymentMethod
from checkout.errors import DependencyUnavailable
from checkout.gateway.service import GatewaySettings, create_app
from checkout.payments import ChargeConflict, ChargeOutcome, ChargeRequest, PaymentTimeout


def settings(path: Path, **overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "ledger_path": str(path),
        "latency_ms": 0.0,
        "decline_rate": 0.0,
        "timeout_rate": 0.0,
        "hang_s": 0.0,
    }
    return GatewaySettings(**(values | overrides))


def body(key: str = "k", **overrides: str) -> dict[str, str]:
    return {
        "key": key,
        "fingerprint": "fp-1",
        "amount": "12.34",
        "method": "Credit card",
        "reference": f"inv-{key}",
        **overrides,
    }


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
def client(ledger_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings(ledger_path))) as test_client:
        yield test_client


def test_settings_default_to_the_lab_acquirer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_PORT", "9999")
    defaults = GatewaySettings()
    assert (defaults.port, defaults.ledger_path) == (9999, "/var/lib/checkout-gateway/ledger.db")
    assert (defaults.latency_ms, defaults.decline_rate, defaults.timeout_rate) == (20, 0.03, 0.002)
    assert defaults.hang_s == 6.0


def test_a_charge_is_answered_once_and_replayed_after_a_restart(ledger_path: Path) -> None:
    with TestClient(create_app(settings(ledger_path))) as first_run:
        first = first_run.post("/v1/charges", json=body())
        again = first_run.post("/v1/charges", json=body())
    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["outcome"] == "approved"
    assert answer["replayed"] is False
    assert answer["reason"] is None
    decided_at = datetime.fromisoformat(answer["decided_at"])
    assert decided_at.utcoffset() is not None
    assert answer["decided_at"].endswith("+00:00")
    assert len(answer["decided_at"].split(".")[1]) == len("123+00:00")
    assert again.json() == answer | {"replayed": True}
    with TestClient(create_app(settings(ledger_path, seed=1))) as restarted:
        after = restarted.post("/v1/charges", json=body())
        stored = restarted.get("/v1/charges/k")
    assert after.json() == answer | {"replayed": True}
    assert stored.status_code == 200
    assert stored.json()["charge_id"] == answer["charge_id"]
    assert stored.json()["amount"] == "12.34"


def test_the_key_with_another_request_is_a_409(client: TestClient) -> None:
    assert client.post("/v1/charges", json=body()).status_code == 200
    for changed in ({"fingerprint": "fp-2"}, {"amount": "12.35"}, {"method": "Ewallet"}):
        refused = client.post("/v1/charges", json=body(**changed))
        assert refused.status_code == 409, changed
        assert "already used" in refused.json()["detail"]


@pytest.mark.parametrize(
    "bad",
    [
        {"key": ""},
        {"key": "k" * 256},
        {"fingerprint": ""},
        {"fingerprint": "f" * 129},
        {"amount": "0"},
        {"amount": "-1.00"},
        {"amount": "1.001"},
        {"amount": "abc"},
        {"method": "Cheque"},
    ],
)
def test_invalid_charges_are_refused(client: TestClient, bad: dict[str, str]) -> None:
    assert client.post("/v1/charges", json=body() | bad).status_code == 422


def test_void_is_idempotent_and_a_later_charge_is_new(client: TestClient) -> None:
    first = client.post("/v1/charges", json=body("a/b")).json()
    assert client.get("/v1/charges/a%2Fb").status_code == 200
    for _ in range(2):
        voided = client.post("/v1/charges/a%2Fb/void")
        assert voided.status_code == 200
    assert client.get("/v1/charges/a%2Fb").status_code == 404
    second = client.post("/v1/charges", json=body("a/b", amount="1.00")).json()
    assert (second["replayed"], second["charge_id"] != first["charge_id"]) == (False, True)


def test_declines_carry_a_weighted_reason(ledger_path: Path) -> None:
    with TestClient(create_app(settings(ledger_path, decline_rate=1.0))) as declining:
        card = declining.post("/v1/charges", json=body("c")).json()
        cash = declining.post("/v1/charges", json=body("m", method="Cash")).json()
    assert card["outcome"] == "declined"
    assert card["reason"] in {"insufficient_funds", "do_not_honor", "expired_card",
                              "suspected_fraud", "incorrect_cvc"}  # fmt: skip
    assert cash["outcome"] == "approved"


def test_a_hang_answers_504_and_half_of_them_charged(ledger_path: Path) -> None:
    with TestClient(create_app(settings(ledger_path, timeout_rate=1.0))) as hanging:
        answers = [hanging.post("/v1/charges", json=body(f"h{i}")) for i in range(40)]
        stored = sum(hanging.get(f"/v1/charges/h{i}").status_code == 200 for i in range(40))
    assert {a.status_code for a in answers} == {504}
    assert 10 < stored < 30


def test_health_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    client.post("/v1/charges", json=body())
    client.post("/v1/charges", json=body())
    client.post("/v1/charges", json=body(fingerprint="other"))
    text = client.get("/metrics").text
    assert 'checkout_gateway_charges_total{method="Credit card",outcome="approved"} 1.0' in text
    assert "checkout_gateway_replays_total 1.0" in text
    assert "checkout_gateway_conflicts_total 1.0" in text
    assert "checkout_gateway_charge_duration_seconds_count 3.0" in text


# --- the client adapter ---------------------------------------------------------------


def request(key: str = "k", amount: str = "12.34", fingerprint: str = "fp-1") -> ChargeRequest:
    return ChargeRequest(key, Decimal(amount), PaymentMethod.EWALLET, f"inv-{key}", fingerprint)


def over_asgi(app: FastAPI, timeout_s: float = 2.0) -> HttpPaymentGateway:
    return HttpPaymentGateway("http://gateway", timeout_s, transport=httpx.ASGITransport(app=app))


def test_the_client_charges_once_per_key_and_maps_a_conflict(ledger_path: Path) -> None:
    app = create_app(settings(ledger_path))
    client = over_asgi(app)

    async def scenario() -> None:
        first = await client.charge(request())
        again = await client.charge(request())
        assert (first.outcome, first.replayed, again.replayed) == (
            ChargeOutcome.APPROVED,
            False,
            True,
        )
        assert (again.charge_id, again.decided_at) == (first.charge_id, first.decided_at)
        with pytest.raises(ChargeConflict):
            await client.charge(request(fingerprint="fp-2"))
        await client.void("k")
        assert (await client.charge(request(amount="1.00"))).charge_id != first.charge_id
        client.ready()
        await client.aclose()

    asyncio.run(scenario())
    app.state.ledger.close()


def test_concurrent_client_calls_with_one_key_make_one_charge(ledger_path: Path) -> None:
    app = create_app(settings(ledger_path, latency_ms=5.0))
    client = over_asgi(app)

    async def race() -> set[str]:
        results = await asyncio.gather(*(client.charge(request()) for _ in range(6)))
        await client.aclose()
        return {r.charge_id for r in results}

    assert len(asyncio.run(race())) == 1
    app.state.ledger.close()


def test_a_failing_gateway_is_a_payment_timeout(ledger_path: Path) -> None:
    async def boom(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b"internal error"})

    client = HttpPaymentGateway("http://gateway", 1.0, transport=httpx.ASGITransport(app=boom))

    async def scenario() -> None:
        with pytest.raises(PaymentTimeout, match="500"):
            await client.charge(request())
        await client.aclose()

    asyncio.run(scenario())
    with pytest.raises(DependencyUnavailable):
        client.ready()


@pytest.fixture
def served_gateway(ledger_path: Path) -> Iterator[str]:
    """The real service on 127.0.0.1 at a free port; every charge hangs for 1 s."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings(ledger_path, timeout_rate=1.0, hang_s=1.0, seed=3)),
        log_level="warning",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def test_a_hanging_gateway_times_out_and_the_void_cancels_it(served_gateway: str) -> None:
    client = HttpPaymentGateway(served_gateway, 0.2)

    async def scenario() -> None:
        started = time.monotonic()
        with pytest.raises(PaymentTimeout):
            await client.charge(request("slow"))
        assert time.monotonic() - started < 0.9
        client.ready()  # it answered the connection: slow, not unreachable
        await client.void("slow")
        await client.aclose()

    asyncio.run(scenario())
    assert httpx.get(f"{served_gateway}/v1/charges/slow").status_code == 404


def test_an_unreachable_gateway_is_a_payment_timeout_and_not_ready() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    client = HttpPaymentGateway(f"http://127.0.0.1:{port}", 0.5)

    async def scenario() -> None:
        client.ready()
        with pytest.raises(PaymentTimeout):
            await client.charge(request())
        with pytest.raises(DependencyUnavailable, match="unreachable"):
            client.ready()
        await client.aclose()

    asyncio.run(scenario())


def test_the_report_lists_approved_charges_before_a_time_oldest_first(ledger_path: Path) -> None:
    with TestClient(create_app(settings(ledger_path))) as client:
        for key in ("r1", "r2", "r3"):
            assert client.post("/v1/charges", json=body(key)).status_code == 200
        late = "2999-01-01T00:00:00+00:00"
        listed = client.get("/v1/charges", params={"approved_before": late, "limit": 2}).json()
        assert [c["key"] for c in listed["charges"]] == ["r1", "r2"]
        assert listed["charges"][0]["reference"] == "inv-r1"
        early = client.get("/v1/charges", params={"approved_before": "2000-01-01T00:00:00+00:00"})
        assert early.json() == {"charges": []}
        # A time without its UTC offset is ambiguous: refused, like any bad query.
        naive = client.get("/v1/charges", params={"approved_before": "2999-01-01T00:00:00"})
        assert naive.status_code == 422
        assert (
            client.get("/v1/charges", params={"approved_before": late, "limit": 0}).status_code
            == 422
        )


def test_the_client_reads_the_report(ledger_path: Path) -> None:
    app = create_app(settings(ledger_path))
    client = over_asgi(app)

    async def scenario() -> None:
        await client.charge(request())
        report = await client.approved_before(datetime.now(UTC) + timedelta(minutes=1), 10)
        assert [(c.key, c.reference) for c in report] == [("k", "inv-k")]
        await client.aclose()

    asyncio.run(scenario())
    app.state.ledger.close()
