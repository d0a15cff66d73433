"""Shoppers at the tills of the three branches, checking out baskets from the dataset.

Run from the repository root (Locust puts the working directory on sys.path):
    ./lab locust                       # web UI on :8089, lab hosts filled in
    CHECKOUT_SHAPE=steady locust -f loadtest/locustfile.py --headless --host http://...

Each user is one till at one branch (branches weighted as in the dataset) and talks to
its region's API (`--branch-hosts A=http://...,B=...`; without it, to `--host`). One
task is one checkout operation: create a cart, add 1 to 5 products, sometimes put one
back, pay. The answers of the API's contract count as successes: 201 sold, 402 declined
(a shopper's card, not a fault), and 504 (payment timed out) or 503 (retry after the
Retry-After delay), after which the till sends the checkout again with the same
Idempotency-Key, as the API asks, up to 5 times. Anything else, or a fifth 503/504, is a
failure.

Every acknowledged sale's invoice id is appended to `--acked-dir`, one file per Locust
process, so the SLO check can find each of them in Cassandra.
"""

from __future__ import annotations

import json
import os
import random
import socket
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, constant_throughput, events, task
from locust.env import Environment

from loadtest import pacing, run, shapes, shopper

SALES = shopper.load_sales()
SALES_BY_BRANCH = shopper.by_branch(SALES)
BRANCH_WEIGHTS = shopper.branch_weights(SALES)
# Answers after which the API asks for the same checkout again with the same key: 504
# (payment timed out, nothing charged) and 503 (a dependency failed, Retry-After given).
RETRY_STATUSES = frozenset({503, 504})
CHECKOUT_ATTEMPTS = 5

_catalog: dict[shopper.ProductKey, str] = {}
_acked: list[str] = []

if os.environ.get("CHECKOUT_SHAPE"):
    CheckoutShape = shapes.by_name(os.environ["CHECKOUT_SHAPE"])


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    group = parser.add_argument_group("checkout load")
    group.add_argument(
        "--checkout-rate",
        type=float,
        default=50.0,
        env_var="CHECKOUT_RATE",
        help="Target checkout operations per second (shapes).",
    )
    group.add_argument(
        "--ops-per-user",
        type=float,
        default=pacing.OPS_PER_USER,
        env_var="CHECKOUT_OPS_PER_USER",
        help="Checkouts per second one till performs at most.",
    )
    group.add_argument("--ramp-s", type=float, default=pacing.RAMP_S, help="Seconds over which users start.")
    group.add_argument("--hold-s", type=float, default=300.0, help="Plateau of the steady shape.")
    group.add_argument("--step-s", type=float, default=60.0, help="Length of one step of the step shape.")
    group.add_argument("--max-rate", type=float, default=1600.0, help="Last rate of the step shape.")
    group.add_argument(
        "--branch-hosts",
        default="",
        env_var="CHECKOUT_BRANCH_HOSTS",
        help="Regional APIs: A=http://host:8080,B=...,C=...",
    )
    group.add_argument("--acked-dir", default="", env_var="CHECKOUT_ACKED_DIR",
                       help="Directory receiving the acknowledged invoice ids.")  # fmt: skip


def parse_branch_hosts(text: str) -> dict[str, str]:
    hosts: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        branch, sep, url = item.partition("=")
        if not sep or branch not in BRANCH_WEIGHTS or not url.startswith("http"):
            raise SystemExit(f"--branch-hosts: {item!r} is not BRANCH=http://host:port ({list(BRANCH_WEIGHTS)})")
        hosts[branch] = url.rstrip("/")
    return hosts


@events.test_start.add_listener
def _load_catalog(environment: Environment, **_: Any) -> None:
    """Product ids come from the API itself (GET /products), once per process."""
    if _catalog or environment.host is None:
        return
    options = environment.parsed_options
    hosts = parse_branch_hosts(options.branch_hosts) if options else {}
    host = next(iter(hosts.values()), environment.host)
    with urllib.request.urlopen(f"{host}/products", timeout=30) as answer:
        _catalog.update(shopper.product_ids(json.load(answer)))
    missing = {sale.product for sale in SALES} - _catalog.keys()
    if missing:
        raise SystemExit(f"{host}/products lacks {len(missing)} dataset products, e.g. {next(iter(missing))}")


@events.test_stop.add_listener
def _write_acked(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if not options or not options.acked_dir or not _acked:
        return
    directory = Path(options.acked_dir)
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / f"acked-{socket.gethostname()}-{os.getpid()}.txt").open("a") as handle:
        handle.writelines(f"{invoice}\n" for invoice in _acked)
    _acked.clear()


class Shopper(FastHttpUser):
    def __init__(self, environment: Environment) -> None:
        options = environment.parsed_options
        self.rng = random.Random()
        self.branch = self.rng.choices(list(BRANCH_WEIGHTS), weights=list(BRANCH_WEIGHTS.values()))[0]
        branch_hosts = parse_branch_hosts(options.branch_hosts) if options else {}
        self.host = branch_hosts.get(self.branch, environment.host)
        self._pace = constant_throughput(options.ops_per_user if options else pacing.OPS_PER_USER)
        super().__init__(environment)

    def wait_time(self) -> float:
        return self._pace(self)

    def _send(self, method: str, path: str, name: str, expect: int, body: Any = None) -> Any:
        with self.client.request(method, path, name=name, json=body, catch_response=True) as reply:
            if reply.status_code != expect:
                reply.failure(f"{reply.status_code}: {(reply.text or '')[:200]}")
                return None
            return reply.json()

    @task
    def checkout(self) -> None:
        started = time.perf_counter()
        if self._basket():
            # One entry per completed operation (sold or declined), whatever its retries:
            # the rate objective counts these, not checkout requests.
            self.environment.events.request.fire(
                request_type="OP",
                name=run.OPERATION_NAME,
                response_time=(time.perf_counter() - started) * 1000,
                response_length=0,
                exception=None,
                context={},
            )

    def _basket(self) -> bool:
        """One checkout operation; True when it completed (sold or declined)."""
        basket = shopper.draw_basket(self.rng, SALES_BY_BRANCH[self.branch])
        cart = self._send("POST", "/carts", "POST /carts", 201, {"branch": basket.branch})
        if cart is None:
            return False
        items = f"/carts/{cart['cart_id']}/items"
        for product, quantity in basket.items + (((basket.removed, 1),) if basket.removed else ()):
            body = {"product_id": _catalog[product], "quantity": quantity}
            if self._send("POST", items, "POST /carts/{id}/items", 200, body) is None:
                return False
        if (
            basket.removed
            and self._send(
                "DELETE", f"{items}/{_catalog[basket.removed]}", "DELETE /carts/{id}/items/{product_id}", 200
            )
            is None
        ):
            return False
        return self._pay(cart["cart_id"], basket.checkout_body())

    def _pay(self, cart_id: str, body: dict[str, str]) -> bool:
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        for attempt in range(1, CHECKOUT_ATTEMPTS + 1):
            with self.client.post(
                f"/carts/{cart_id}/checkout", json=body, headers=headers,
                name="POST /carts/{id}/checkout", catch_response=True,
            ) as reply:  # fmt: skip
                if reply.status_code == 201:
                    _acked.append(reply.json()["invoice_id"])
                    return True
                if reply.status_code == 402:
                    reply.success()
                    return True
                if reply.status_code not in RETRY_STATUSES or attempt == CHECKOUT_ATTEMPTS:
                    reply.failure(f"{reply.status_code}: {(reply.text or '')[:200]}")
                    return False
                reply.success()
                retry_after = float(reply.headers.get("Retry-After") or 0)
            # Back off (0.5, 1, 2, 4 s) so retries do not add to an overload they may have met.
            gevent.sleep(max(min(retry_after, 5.0), 0.5 * 2 ** (attempt - 1)))
        return False
