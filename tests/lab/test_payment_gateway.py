"""The sandbox payment gateway in the lab: it answers on its host's port, charges once per
idempotency key, and its ledger survives a restart of the service."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest

from tests.conftest import address, group_hosts, lab_host

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("lab_is_up")]

HOST = group_hosts("payment_gateway")[0]
BASE = f"http://{address(HOST)}:8090"


def _call(method: str, path: str, body: dict[str, str] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{BASE}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def _charge(key: str, **overrides: str) -> tuple[int, Any]:
    body = {
        "key": key,
        "fingerprint": "lab-test",
        "amount": "12.34",
        "method": "Cash",  # never declined, never hangs: the test is about idempotency
        "reference": f"inv-{key}",
        **overrides,
    }
    return _call("POST", "/v1/charges", body)


def _wait_healthy(deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            if _call("GET", "/healthz") == (200, {"status": "ok"}):
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"checkout-gateway on {HOST} not healthy after restart"
        time.sleep(1)


def test_the_gateway_answers_healthz_on_its_host() -> None:
    assert _call("GET", "/healthz") == (200, {"status": "ok"})
    assert lab_host(HOST).service("checkout-gateway").is_enabled


def test_a_key_charged_twice_is_one_charge_and_another_request_is_refused() -> None:
    key = f"lab-{uuid.uuid4()}"
    first = _charge(key)
    again = _charge(key)
    assert first[0] == 200, first
    assert again == (200, first[1] | {"replayed": True})
    assert _charge(key, amount="99.00")[0] == 409
    status, stored = _call("GET", f"/v1/charges/{key}")
    assert (status, stored["charge_id"]) == (200, first[1]["charge_id"])
    assert _call("POST", f"/v1/charges/{key}/void")[0] == 200


def test_the_ledger_survives_a_restart_of_the_service() -> None:
    key = f"lab-{uuid.uuid4()}"
    status, first = _charge(key)
    assert status == 200, first
    restart = lab_host(HOST).run("systemctl restart checkout-gateway")
    assert restart.rc == 0, restart.stderr
    _wait_healthy()
    assert _charge(key) == (200, first | {"replayed": True})
    ledger = lab_host(HOST).run("stat -c '%U %a' /var/lib/checkout-gateway/ledger.db")
    assert ledger.stdout.split() == ["checkout-gateway", "640"]
