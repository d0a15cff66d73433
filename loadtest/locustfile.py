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
Idempotency-Key, as the API asks, backing off, for up to 60 s (`loadtest.till`). Anything
else, or a 503/504 when that time is up, is a failure.

Failover: when its region's API cannot be reached (connection refused, host unreachable),
the till sends the same request to the next region's API and stays there for the rest of
the operation; every API serves every branch. A checkout that got no answer at all moves
too, since its Idempotency-Key makes the resend safe; a cart step that may have arrived
does not (adding an item is not idempotent) and fails.

Every acknowledged sale's invoice id is appended to `--acked-dir`, one file per Locust
process, so the SLO check can find each of them in Cassandra. With `--ops-log DIR`, every
operation is also written as it ends (one JSON line: start, end, outcome, the checkout's
Idempotency-Key and time), and every key as its first checkout request leaves, so a fault
run (loadtest.chaos) can judge any window of the run, even after Locust was killed.
"""

from __future__ import annotations

import errno
import json
import os
import random
import socket
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, constant_throughput, events, task
from locust.env import Environment

from loadtest import pacing, run, shapes, shopper, till

SALES = shopper.load_sales()
SALES_BY_BRANCH = shopper.by_branch(SALES)
BRANCH_WEIGHTS = shopper.branch_weights(SALES)
# Answers after which the API asks for the same checkout again with the same key: 504
# (payment timed out, nothing charged) and 503 (a dependency failed, Retry-After given).
RETRY_STATUSES = frozenset({503, 504})
RETRY = till.RetryPolicy()
# Connection errors of a request that never reached the API: the till fails over.
UNREACHED = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH})

_catalog: dict[shopper.ProductKey, str] = {}
_acked: list[str] = []
_ops_log: list[Any] = []  # the open ops log of this process, if --ops-log


@dataclass
class Outcome:
    """How one checkout operation ended, for the ops log."""

    result: str = "failed"  # sold, declined, or failed
    step: str = ""  # the request that failed
    key: str = ""  # the checkout's Idempotency-Key
    invoice: str = ""
    checkout_ms: float = 0.0
    failovers: int = 0  # times the till moved to another region's API


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
    group.add_argument("--stop-file", default="", help="The steady shape ends early once this file exists.")
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
    group.add_argument("--ops-log", default="", env_var="CHECKOUT_OPS_LOG",
                       help="Directory receiving one JSON line per operation, as it ends.")  # fmt: skip


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


@events.test_start.add_listener
def _open_ops_log(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if not options or not options.ops_log or _ops_log:
        return
    directory = Path(options.ops_log)
    directory.mkdir(parents=True, exist_ok=True)
    # Line-buffered: every record is in the file as soon as it is written, kill -9 or not.
    _ops_log.append((directory / f"ops-{socket.gethostname()}-{os.getpid()}.jsonl").open("a", buffering=1))


def _log(record: dict[str, Any]) -> None:
    if _ops_log:
        _ops_log[0].write(json.dumps(record, separators=(",", ":")) + "\n")


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


def unreached(error: BaseException | None) -> bool:
    """The request never reached an API (nothing refused it, nothing was done)."""
    return isinstance(error, OSError) and error.errno in UNREACHED


class Shopper(FastHttpUser):
    # A till whose API host is gone learns it within seconds, not after Locust's 60 s.
    connection_timeout = 3.0

    def __init__(self, environment: Environment) -> None:
        options = environment.parsed_options
        self.rng = random.Random()
        self.branch = self.rng.choices(list(BRANCH_WEIGHTS), weights=list(BRANCH_WEIGHTS.values()))[0]
        branch_hosts = parse_branch_hosts(options.branch_hosts) if options else {}
        home = branch_hosts.get(self.branch) or environment.host or ""
        # The region's API first, then the others: any API serves any branch (it routes the
        # branch's state to the branch's DC), so a till whose API is down checks out elsewhere.
        self.apis = [home, *(url for _, url in sorted(branch_hosts.items()) if url != home)]
        self.api = 0  # the API this operation talks to: home until it cannot be reached
        self.host = home
        self._pace = constant_throughput(options.ops_per_user if options else pacing.OPS_PER_USER)
        super().__init__(environment)

    def wait_time(self) -> float:
        return self._pace(self)

    def _fail_over(self, outcome: Outcome) -> bool:
        """Move this operation to the next region's API; False when there is none left."""
        if self.api + 1 >= len(self.apis):
            return False
        self.api += 1
        outcome.failovers += 1
        return True

    def _send(self, method: str, path: str, name: str, expect: int, outcome: Outcome, body: Any = None) -> Any:
        while True:
            url = self.apis[self.api] + path
            with self.client.request(method, url, name=name, json=body, catch_response=True) as reply:
                # Only a request that never arrived moves: adding an item is not idempotent.
                if reply.status_code == 0 and unreached(reply.error) and self._fail_over(outcome):
                    reply.success()
                    continue
                if reply.status_code != expect:
                    reply.failure(f"{reply.status_code}: {(reply.text or '')[:200]}")
                    return None
                return reply.json()

    @task
    def checkout(self) -> None:
        started, wall = time.perf_counter(), time.time()
        outcome = Outcome()
        self.api = 0
        completed = self._basket(outcome)
        elapsed_ms = (time.perf_counter() - started) * 1000
        _log({
            "e": "op", "t0": round(wall, 3), "t1": round(wall + elapsed_ms / 1000, 3), "branch": self.branch,
            "result": outcome.result, "step": outcome.step, "key": outcome.key, "invoice": outcome.invoice,
            "checkout_ms": round(outcome.checkout_ms, 1), "op_ms": round(elapsed_ms, 1), "failovers": outcome.failovers,
        })  # fmt: skip
        if completed:
            # One entry per completed operation (sold or declined), whatever its retries:
            # the rate objective counts these, not checkout requests.
            self.environment.events.request.fire(
                request_type="OP",
                name=run.OPERATION_NAME,
                response_time=elapsed_ms,
                response_length=0,
                exception=None,
                context={},
            )

    def _basket(self, outcome: Outcome) -> bool:
        """One checkout operation; True when it completed (sold or declined)."""
        basket = shopper.draw_basket(self.rng, SALES_BY_BRANCH[self.branch])
        outcome.step = "POST /carts"
        cart = self._send("POST", "/carts", outcome.step, 201, outcome, {"branch": basket.branch})
        if cart is None:
            return False
        items = f"/carts/{cart['cart_id']}/items"
        outcome.step = "POST /carts/{id}/items"
        for product, quantity in basket.items + (((basket.removed, 1),) if basket.removed else ()):
            body = {"product_id": _catalog[product], "quantity": quantity}
            if self._send("POST", items, outcome.step, 200, outcome, body) is None:
                return False
        outcome.step = "DELETE /carts/{id}/items/{product_id}"
        removal = f"{items}/{_catalog[basket.removed]}" if basket.removed else ""
        if removal and self._send("DELETE", removal, outcome.step, 200, outcome) is None:
            return False
        outcome.step = "POST /carts/{id}/checkout"
        return self._pay(cart["cart_id"], basket.checkout_body(), outcome)

    def _pay(self, cart_id: str, body: dict[str, str], outcome: Outcome) -> bool:
        outcome.key = str(uuid.uuid4())
        headers = {"Idempotency-Key": outcome.key}
        # Logged before it leaves: a charge made for a key whose answer never came back
        # (the till killed, the last timeout) is still a key the fault audit looks up.
        _log({"e": "pay", "t": round(time.time(), 3), "branch": self.branch, "key": outcome.key})
        started = time.perf_counter()
        completed = self._attempts(cart_id, body, headers, outcome)
        outcome.checkout_ms = (time.perf_counter() - started) * 1000
        return completed

    def _attempts(self, cart_id: str, body: dict[str, str], headers: dict[str, str], outcome: Outcome) -> bool:
        attempt, started = 1, time.perf_counter()
        while True:
            with self.client.post(
                f"{self.apis[self.api]}/carts/{cart_id}/checkout", json=body, headers=headers,
                name="POST /carts/{id}/checkout", catch_response=True,
            ) as reply:  # fmt: skip
                if reply.status_code == 201:
                    outcome.result, outcome.step = "sold", ""
                    outcome.invoice = reply.json()["invoice_id"]
                    _acked.append(outcome.invoice)
                    return True
                if reply.status_code == 402:
                    outcome.result, outcome.step = "declined", ""
                    reply.success()
                    return True
                # No answer at all: the checkout is idempotent by its key, so the till sends
                # it to the next region's API at once; a request that never arrived is no attempt.
                if reply.status_code == 0 and attempt < RETRY.attempts and self._fail_over(outcome):
                    reply.success()
                    attempt += not unreached(reply.error)
                    continue
                wait = None
                if reply.status_code in RETRY_STATUSES:
                    retry_after = float(reply.headers.get("Retry-After") or 0)
                    wait = RETRY.next_wait_s(attempt, time.perf_counter() - started, retry_after)
                if wait is None:
                    reply.failure(f"{reply.status_code}: {(reply.text or '')[:200]}")
                    return False
                reply.success()
            gevent.sleep(wait)
            attempt += 1
