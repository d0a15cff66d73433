"""A checkout through the API reaches Cassandra in every DC; retries return the same invoice."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from cassandra import ConsistencyLevel

from .conftest import FIGURES
from .lab import INVOICE_NAMESPACE, SALES_TTL_S, Inventory, Reply, http

SALE_TABLES = ("sales_by_invoice", "sales_by_branch_day", "sales_by_product_line_day")
VISIBLE_WITHIN_S = 20.0
BRANCH_OF_REGION = {"Yangon": "A", "Mandalay": "B", "Naypyitaw": "C"}


def _ok(reply: Reply, status: int = 200) -> Any:
    assert reply.status == status, f"HTTP {reply.status}: {reply.body}"
    return reply.body


def _checkout(api: str, branch: str, payment: str = "Cash") -> tuple[str, dict[str, Any], Reply]:
    """A cart with two products, checked out; returns the key, the request and the reply."""
    products = _ok(http(api, "GET", "/products"))
    cart = _ok(http(api, "POST", "/carts", json_body={"branch": branch}), 201)
    picks = [products[int(time.time_ns()) % len(products)], products[7]]
    for quantity, product in enumerate(picks, start=2):
        body = {"product_id": product["product_id"], "quantity": quantity}
        _ok(http(api, "POST", f"/carts/{cart['cart_id']}/items", json_body=body))
    request = {"payment": payment, "customer_type": "Member", "gender": "Female", "rating": 8.5}
    key = str(uuid.uuid4())
    reply = http(
        api,
        "POST",
        f"/carts/{cart['cart_id']}/checkout",
        json_body=request,
        headers={"Idempotency-Key": key},
    )
    return key, {"cart_id": cart["cart_id"], "body": request}, reply


def _wait_for_rows(session: Any, invoice_id: str, lines: int, since: float | None = None) -> tuple[list[Any], float]:
    """Poll until the invoice has its lines; returns them and the seconds since `since`."""
    statement = session.prepare(
        "SELECT invoice_id, line_no, branch, total, TTL(total) AS ttl FROM sales_by_invoice WHERE invoice_id = ?"
    )
    # LOCAL_QUORUM, as the services read: after a node of the DC was down (the rolling-restart
    # and node-loss tests), writes made at the fallback level sit on one replica until hints are
    # replayed, and a LOCAL_ONE read of the other replica would miss them for a while.
    statement.consistency_level = ConsistencyLevel.LOCAL_QUORUM
    started = time.perf_counter() if since is None else since
    while True:
        rows = list(session.execute(statement, (invoice_id,)))
        if len(rows) >= lines or time.perf_counter() - started > VISIBLE_WITHIN_S:
            return rows, time.perf_counter() - started
        time.sleep(0.05)


@pytest.mark.parametrize("region", ["Yangon", "Mandalay", "Naypyitaw"])
def test_checkout_is_readable_in_every_dc(lab: Inventory, dc_sessions: dict[str, Any], region: str) -> None:
    api = lab.address(lab.app_host_of(region))
    key, _, reply = _checkout(api, BRANCH_OF_REGION[region])
    answered = time.perf_counter()
    receipt = _ok(reply, 201)
    FIGURES[f"checkout latency via {region} API (client, ms)"] = round(reply.elapsed_s * 1000, 1)
    assert receipt["invoice_id"] == str(uuid.uuid5(uuid.UUID(INVOICE_NAMESPACE), key))
    assert len(receipt["lines"]) == 2

    seen: dict[str, float] = {}
    for dc, session in dc_sessions.items():
        rows, waited = _wait_for_rows(session, receipt["invoice_id"], 2, since=answered)
        assert len(rows) == 2, f"invoice {receipt['invoice_id']} not in DC {dc} after {waited:.1f}s"
        assert {row.branch for row in rows} == {BRANCH_OF_REGION[region]}
        assert sum(row.total for row in rows) == Decimal(receipt["total"])
        for row in rows:
            assert SALES_TTL_S - 1000 <= row.ttl <= SALES_TTL_S, f"TTL {row.ttl} in DC {dc}"
        seen[dc] = round(waited * 1000)
    FIGURES[f"sale from {region} readable per DC, ms after the receipt (LOCAL_QUORUM)"] = seen


def test_checkout_latency_as_the_client_sees_it(lab: Inventory) -> None:
    """A short, bounded sample: 10 sequential checkouts (Cash, 2 lines) on one API."""
    api = lab.address(lab.app_host_of("Yangon"))
    latencies = []
    for _ in range(10):
        _, _, reply = _checkout(api, "A")
        _ok(reply, 201)
        latencies.append(reply.elapsed_s * 1000)
    latencies.sort()
    FIGURES["checkout latency, 10 sequential (ms): p50 / max"] = (
        f"{latencies[len(latencies) // 2]:.0f} / {latencies[-1]:.0f}"
    )
    assert latencies[len(latencies) // 2] < 2000


def test_every_sale_table_row_carries_the_90_day_ttl(lab: Inventory, dc_sessions: dict[str, Any]) -> None:
    api = lab.address(lab.app_host_of("Yangon"))
    _, _, reply = _checkout(api, "A")
    receipt = _ok(reply, 201)
    session = dc_sessions["Yangon"]
    rows, _ = _wait_for_rows(session, receipt["invoice_id"], 2)
    assert len(rows) == 2
    sold = rows[0]
    day = session.execute(
        "SELECT day, sold_at FROM sales_by_invoice WHERE invoice_id = %s LIMIT 1",
        (receipt["invoice_id"],),
    ).one()
    ttls = {
        "sales_by_invoice": [r.ttl for r in rows],
        "sales_by_branch_day": [
            r.ttl
            for r in session.execute(
                "SELECT TTL(total) AS ttl FROM sales_by_branch_day "
                "WHERE branch = %s AND day = %s AND sold_at = %s AND invoice_id = %s",
                (sold.branch, day.day, day.sold_at, receipt["invoice_id"]),
            )
        ],
        "sales_by_product_line_day": [
            r.ttl
            for line in receipt["lines"]
            for r in session.execute(
                "SELECT TTL(total) AS ttl FROM sales_by_product_line_day "
                "WHERE product_line = %s AND day = %s AND sold_at = %s AND invoice_id = %s",
                (line["product_line"], day.day, day.sold_at, receipt["invoice_id"]),
            )
        ],
    }
    FIGURES["TTL of a fresh sale's rows (s)"] = {t: sorted(set(v)) for t, v in ttls.items()}
    for table, values in ttls.items():
        assert values, f"no row in {table}"
        for ttl in values:
            assert 7_775_000 <= ttl <= 7_776_000, f"{table} row has TTL {ttl}"


def test_retried_checkout_returns_the_same_invoice(lab: Inventory, dc_sessions: dict[str, Any]) -> None:
    api = lab.address(lab.app_host_of("Mandalay"))
    key, request, first = _checkout(api, "B")
    receipt = _ok(first, 201)
    path = f"/carts/{request['cart_id']}/checkout"
    headers = {"Idempotency-Key": key}

    again = http(api, "POST", path, json_body=request["body"], headers=headers)
    assert again.status == 201, again.body
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.body == receipt

    # The same key, retried through another region's API once the sale is everywhere.
    rows, _ = _wait_for_rows(dc_sessions["Yangon"], receipt["invoice_id"], 2)
    assert len(rows) == 2
    elsewhere = http(
        lab.address(lab.app_host_of("Yangon")), "POST", path, json_body=request["body"],
        headers=headers,
    )  # fmt: skip
    assert elsewhere.status == 201, elsewhere.body
    assert elsewhere.body["invoice_id"] == receipt["invoice_id"]

    changed = http(api, "POST", path, json_body={**request["body"], "payment": "Ewallet"},
                   headers=headers)  # fmt: skip
    assert changed.status == 422, changed.body
    assert "already used for a different checkout request" in changed.body["detail"]

    # Exactly one sale: two lines, written once, whatever the retries.
    for dc, session in dc_sessions.items():
        rows, _ = _wait_for_rows(session, receipt["invoice_id"], 2)
        assert sorted(row.line_no for row in rows) == [1, 2], f"DC {dc}: {rows}"


def test_one_key_sent_to_two_api_nodes_at_once_is_one_charge_and_one_sale(
    lab: Inventory, dc_sessions: dict[str, Any]
) -> None:
    """The same checkout (key K) on app-a and app-b concurrently: the sandbox gateway's
    charges live in Cassandra (sandbox_charges, claimed with IF NOT EXISTS), so both
    nodes answer with one charge, one approval time, hence one sale event."""
    api_a, api_b = (lab.address(lab.app_host_of(region)) for region in ("Yangon", "Mandalay"))
    for _ in range(3):  # a card may be declined (3%): then try with a new key
        products = _ok(http(api_a, "GET", "/products"))
        cart = _ok(http(api_a, "POST", "/carts", json_body={"branch": "A"}), 201)
        for quantity, product in enumerate([products[3], products[int(time.time_ns()) % len(products)]], 1):
            _ok(http(api_a, "POST", f"/carts/{cart['cart_id']}/items",
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

    invoice_id = a.body["invoice_id"]
    for dc, session in dc_sessions.items():
        rows, _ = _wait_for_rows(session, invoice_id, 2)
        assert sorted(row.line_no for row in rows) == [1, 2], f"DC {dc}: {rows}"
        sold = list(session.execute("SELECT day, sold_at FROM sales_by_invoice WHERE invoice_id = %s", (invoice_id,)))
        assert len({(row.day, row.sold_at) for row in sold}) == 1, f"DC {dc}: two approval times"
        around = (sold[0].sold_at - timedelta(minutes=1), sold[0].sold_at + timedelta(minutes=1))
        by_day = [r for r in session.execute(
            "SELECT invoice_id FROM sales_by_branch_day WHERE branch = 'A' AND day = %s AND sold_at >= %s "
            "AND sold_at <= %s", (sold[0].day, *around),
        ) if r.invoice_id == invoice_id]  # fmt: skip
        assert len(by_day) == 2, f"DC {dc}: {len(by_day)} rows of {invoice_id} in sales_by_branch_day"
    charges = list(dc_sessions["Yangon"].execute("SELECT charge_id FROM sandbox_charges WHERE key = %s", (key,)))
    assert [c.charge_id for c in charges] == [a.body["charge_id"]]
    FIGURES["one key on app-a and app-b at once: status, charge"] = f"{a.status}/{b.status}, {a.body['charge_id']}"
