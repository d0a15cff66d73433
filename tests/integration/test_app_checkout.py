"""A checkout through the API reaches Cassandra in every DC (its one `sales` row, the
lines inside); retries return the same invoice."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from checkout.cql import SALES_TTL_SECONDS
from checkout.events import line_rows, stored_lines
from checkout.idempotency import invoice_id_for

from .conftest import FIGURES
from .lab import NODE_EXPORTER_PORT, Inventory, SaleKey, checkout, http, ok, rows_of_invoice, ssh, wait_for_sale


@pytest.mark.parametrize("region", ["Yangon", "Mandalay", "Naypyitaw"])
def test_checkout_is_readable_in_every_dc(lab: Inventory, dc_sessions: dict[str, Any], region: str) -> None:
    api = lab.address(lab.app_host_of(region))
    branch = lab.branch_of(region)
    key, _, reply = checkout(api, branch)
    answered = time.perf_counter()
    receipt = ok(reply, 201)
    FIGURES[f"checkout latency via {region} API (client, ms)"] = round(reply.elapsed_s * 1000, 1)
    assert receipt["invoice_id"] == invoice_id_for(key)
    assert len(receipt["lines"]) == 2
    sale = SaleKey.of(receipt)

    seen: dict[str, float] = {}
    for dc, session in dc_sessions.items():
        row, waited = wait_for_sale(session, sale, 2, since=answered)
        assert row is not None, f"invoice {sale.invoice_id} not in DC {dc} after {waited:.1f}s"
        lines = line_rows(row._asdict())
        assert len(lines) == 2, f"DC {dc}: {lines}"
        assert row.branch == branch
        assert row.total == sum((line["total"] for line in lines), Decimal(0)) == Decimal(receipt["total"])
        assert SALES_TTL_SECONDS - 1000 <= row.ttl <= SALES_TTL_SECONDS, f"TTL {row.ttl} in DC {dc}"
        seen[dc] = round(waited * 1000)
    FIGURES[f"sale from {region} readable per DC, ms after the receipt (LOCAL_QUORUM)"] = seen


def test_checkout_latency_as_the_client_sees_it(lab: Inventory) -> None:
    """A short, bounded sample: 10 sequential checkouts (Cash, 2 lines) on one API."""
    api = lab.address(lab.app_host_of("Yangon"))
    latencies = []
    for _ in range(10):
        _, _, reply = checkout(api, lab.branch_of("Yangon"))
        ok(reply, 201)
        latencies.append(reply.elapsed_s * 1000)
    latencies.sort()
    FIGURES["checkout latency, 10 sequential (ms): p50 / max"] = (
        f"{latencies[len(latencies) // 2]:.0f} / {latencies[-1]:.0f}"
    )
    assert latencies[len(latencies) // 2] < 2000


def test_the_sale_row_carries_the_90_day_ttl(lab: Inventory, dc_sessions: dict[str, Any]) -> None:
    api = lab.address(lab.app_host_of("Yangon"))
    _, _, reply = checkout(api, lab.branch_of("Yangon"))
    receipt = ok(reply, 201)
    row, _ = wait_for_sale(dc_sessions["Yangon"], SaleKey.of(receipt), 2)
    assert row is not None, f"invoice {receipt['invoice_id']} not stored"
    ttls = {"total": row.ttl, "lines": row.lines_ttl}
    FIGURES["TTL of a fresh sale's row (s)"] = ttls
    for column, ttl in ttls.items():
        assert SALES_TTL_SECONDS - 1000 <= ttl <= SALES_TTL_SECONDS, f"sales.{column} has TTL {ttl}"


def test_retried_checkout_returns_the_same_invoice(lab: Inventory, dc_sessions: dict[str, Any]) -> None:
    api = lab.address(lab.app_host_of("Mandalay"))
    key, request, first = checkout(api, lab.branch_of("Mandalay"))
    receipt = ok(first, 201)
    path = f"/carts/{request['cart_id']}/checkout"
    headers = {"Idempotency-Key": key}

    again = http(api, "POST", path, json_body=request["body"], headers=headers)
    assert again.status == 201, again.body
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.body == receipt

    # The same key, retried through another region's API once the sale is everywhere.
    sale = SaleKey.of(receipt)
    row, _ = wait_for_sale(dc_sessions["Yangon"], sale, 2)
    assert row is not None, f"invoice {sale.invoice_id} not in DC Yangon"
    elsewhere = http(
        lab.address(lab.app_host_of("Yangon")), "POST", path, json_body=request["body"],
        headers=headers,
    )  # fmt: skip
    assert elsewhere.status == 201, elsewhere.body
    assert elsewhere.body["invoice_id"] == receipt["invoice_id"]

    changed = http(api, "POST", path, json_body={**request["body"], "payment": "Ewallet"},
                   headers=headers)  # fmt: skip
    assert changed.status == 409, changed.body
    assert "already used for a different checkout request" in changed.body["detail"]

    # Exactly one sale: one row with two lines, whatever the retries.
    for dc, session in dc_sessions.items():
        row, _ = wait_for_sale(session, sale, 2)
        assert row is not None, f"invoice {sale.invoice_id} not in DC {dc}"
        assert [line["line_no"] for line in line_rows(row._asdict())] == [1, 2], f"DC {dc}: {row}"
        assert len(rows_of_invoice(session, sale)) == 1, f"DC {dc}: the sale stored twice"


def test_one_key_sent_to_two_api_nodes_at_once_is_one_charge_and_one_sale(
    lab: Inventory, dc_sessions: dict[str, Any]
) -> None:
    """The same checkout (key K) on app-a and app-b concurrently: the sandbox gateway (its
    own HTTP service) charges once per idempotency key, so both nodes answer with one
    charge, one approval time, hence one sale event and one `sales` row."""
    api_a, api_b = (lab.address(lab.app_host_of(region)) for region in ("Yangon", "Mandalay"))
    for _ in range(3):  # a card may be declined (3%): then try with a new key
        products = ok(http(api_a, "GET", "/products"))
        cart = ok(http(api_a, "POST", "/carts", json_body={"branch": lab.branch_of("Yangon")}), 201)
        for quantity, product in enumerate([products[3], products[int(time.time_ns()) % len(products)]], 1):
            ok(http(api_a, "POST", f"/carts/{cart['cart_id']}/items",
                     json_body={"product_id": product["product_id"], "quantity": quantity}))  # fmt: skip
        key = str(uuid.uuid4())
        path = f"/carts/{cart['cart_id']}/checkout"
        body = {"payment": "Credit card", "customer_type": "Member", "gender": "Male", "rating": 7.0}
        with ThreadPoolExecutor(2) as pool:
            sent = [pool.submit(http, api, "POST", path, json_body=body, headers={"Idempotency-Key": key})
                    for api in (api_a, api_b)]  # fmt: skip
            replies = [future.result() for future in sent]
        if {r.status for r in replies} != {402}:
            break
    a, b = replies
    assert a.status == 201 and b.status == 201, (a.status, a.body, b.status, b.body)
    for field in ("invoice_id", "charge_id", "sold_at", "total"):
        assert a.body[field] == b.body[field], field
    # A retry later, on the other node, gets the same receipt.
    later = http(api_b, "POST", path, json_body=body, headers={"Idempotency-Key": key})
    assert later.status == 201 and later.body["charge_id"] == a.body["charge_id"], later.body

    sale = SaleKey.of(a.body)
    for dc, session in dc_sessions.items():
        row, _ = wait_for_sale(session, sale, 2)
        assert row is not None, f"invoice {sale.invoice_id} not in DC {dc}"
        assert len(stored_lines(row._asdict())) == 2, f"DC {dc}: {row}"
        sold = rows_of_invoice(session, sale)
        assert len(sold) == 1, f"DC {dc}: {len(sold)} rows of {sale.invoice_id} in sales (two approval times?)"
    charge = lab.gateway_charge(key)
    assert charge.status == 200, f"gateway GET /v1/charges/{key}: HTTP {charge.status} {charge.body}"
    assert charge.body["charge_id"] == a.body["charge_id"], charge.body
    FIGURES["one key on app-a and app-b at once: status, charge"] = f"{a.status}/{b.status}, {a.body['charge_id']}"


def test_the_reconciler_voids_a_charge_without_a_sale_and_keeps_the_sold_one(
    lab: Inventory, dc_sessions: dict[str, Any]
) -> None:
    """A charge approved for a checkout whose sale never came (the till gave up while Kafka
    could not confirm it) is voided by checkout-reconcile; a sold checkout's is kept."""
    host, _, port = lab.gateway_url().removeprefix("http://").partition(":")
    orphan = str(uuid.uuid4())
    charged = http(host, "POST", "/v1/charges", port=int(port), json_body={
        "key": orphan, "fingerprint": "reconcile-test", "amount": "1.00", "method": "Cash",
        "reference": invoice_id_for(orphan),
    })  # fmt: skip
    assert charged.status == 200 and charged.body["outcome"] == "approved", charged.body
    api = lab.address(lab.app_host_of("Yangon"))
    sold_key, _, sold = checkout(api, lab.branch_of("Yangon"))
    assert sold.status == 201, sold.body
    for session in dc_sessions.values():
        assert wait_for_sale(session, SaleKey.of(sold.body), 2)[0] is not None
    # The last three minutes, however young: only this test's charges and its neighbours'.
    command = "checkout-reconcile --older-than-min 0 --since-h 0.05 --void"
    done = ssh(api, command, timeout_s=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"voided: {orphan}" in done.stdout, done.stdout
    assert sold_key not in done.stdout, done.stdout
    assert lab.gateway_charge(orphan).status == 404
    assert lab.gateway_charge(sold_key).status == 200
    FIGURES["checkout-reconcile, last 3 minutes"] = done.stdout.splitlines()[0]


def test_the_reconciler_runs_on_every_app_nodes_timer(lab: Inventory) -> None:
    """Each app node's checkout-reconcile.timer is active, and its service runs the
    reconciler at the role's age to success (voids are the test above's)."""
    for host in lab.app_hosts():
        timer = ssh(lab.address(host), "systemctl is-active checkout-reconcile.timer")
        assert timer.stdout.strip() == "active", f"{host}: {timer.stdout}{timer.stderr}"
    api = lab.address(lab.app_host_of("Yangon"))
    started = time.monotonic()
    ran = ssh(
        api,
        "systemctl start checkout-reconcile.service"
        " && systemctl show -p Result --value checkout-reconcile.service"
        " && journalctl -u checkout-reconcile.service -n 5 --no-pager -o cat",
        timeout_s=180,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    result, *journal = ran.stdout.splitlines()
    assert result == "success", ran.stdout
    report = [line for line in journal if line.startswith("approved charges 30 min to")]
    assert report, ran.stdout
    FIGURES["checkout-reconcile.service on the timer's terms"] = f"{report[-1]} ({time.monotonic() - started:.1f} s)"
    # Its outcome reaches node exporter, which CheckoutReconcileNotSucceeding reads.
    metrics = ok(http(api, "GET", "/metrics", port=NODE_EXPORTER_PORT))
    gauges = dict(line.split(" ", 1) for line in metrics.splitlines() if line.startswith("checkout_reconcile_"))
    assert gauges.get("checkout_reconcile_last_run_success") == "1", metrics[-2000:]
    assert abs(float(gauges["checkout_reconcile_last_success_timestamp_seconds"]) - time.time()) < 300
    assert float(gauges["checkout_reconcile_interval_seconds"]) > 0
