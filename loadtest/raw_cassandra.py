"""The raw Cassandra write ceiling for the sale row shape, to compare the pipeline with.

cassandra-stress is not published on Maven Central for Cassandra 5.0 (the lab assembles
Cassandra from the cassandra-all jars), so this plays its part: processes on the
controller write rows shaped exactly like `checkout.sales` (one row per invoice with its
lines as JSON, built by the app's own `sale_row`) into a scratch copy of that table (same
schema, same replication, same consistency level) as fast as the cluster takes them, with
the same driver and load-balancing policy the consumer uses, and count what was
acknowledged.
"""

from __future__ import annotations

import multiprocessing
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from checkout.catalog import product_id_for
from checkout.domain import STORE_TZ, Branch, CustomerType, Gender, PaymentMethod, ProductLine
from checkout.events import SALE_COLUMNS, SaleLine, build_event, sale_row
from checkout.pricing import price_line

from loadtest import shopper
from loadtest.targets import Targets

SOURCE_KEYSPACE = "checkout"
BENCH_KEYSPACE = "checkout_bench"
TABLE = "sales"
# Distinct baskets priced up front; each write then only gets a fresh invoice id and time.
TEMPLATES = 500


@dataclass(frozen=True)
class RawCassandra:
    rows_per_s: float
    rows: int
    errors: int
    seconds: float
    processes: int
    concurrency: int
    consistency: str


def connect(dc: str, addresses: list[str], consistency: str) -> Cluster:
    """A cluster routed DC-aware and token-aware to `dc`, as the consumer's driver is."""
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=dc)),
        consistency_level=ConsistencyLevel.name_to_value[consistency],
        request_timeout=30,
    )
    return Cluster(addresses, execution_profiles={EXEC_PROFILE_DEFAULT: profile}, protocol_version=5)


def create_bench_table(targets: Targets) -> None:
    cluster = connect(*next(iter(targets.cassandra_by_dc.items())), "ALL")
    try:
        session = cluster.connect()
        source = cluster.metadata.keyspaces[SOURCE_KEYSPACE]
        # Same replication as the real keyspace: its CREATE statement, renamed.
        keyspace_cql = (
            source.export_as_string()
            .split(";")[0]
            .replace(f"CREATE KEYSPACE {SOURCE_KEYSPACE}", f"CREATE KEYSPACE IF NOT EXISTS {BENCH_KEYSPACE}")
        )
        session.execute(keyspace_cql)
        table_cql = (
            source.tables[TABLE]
            .as_cql_query()
            .replace(f"CREATE TABLE {SOURCE_KEYSPACE}.", f"CREATE TABLE IF NOT EXISTS {BENCH_KEYSPACE}.")
        )
        session.execute(table_cql)
        cluster.control_connection.wait_for_schema_agreement(wait_time=60)
    finally:
        cluster.shutdown()


def drop_bench_keyspace(targets: Targets) -> None:
    cluster = connect(*next(iter(targets.cassandra_by_dc.items())), "ALL")
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {BENCH_KEYSPACE}", timeout=120)
    finally:
        cluster.shutdown()


def sale_templates(seed: int, count: int = TEMPLATES) -> list[dict[str, Any]]:
    """Stored sale rows of baskets drawn as the load test draws them (the app's sale_row of
    the app's event), so the scratch rows carry real line counts and JSON sizes."""
    rng = random.Random(seed)
    by_branch = shopper.by_branch(shopper.load_sales())
    templates = []
    for _ in range(count):
        basket = shopper.draw_basket(rng, by_branch[rng.choice(sorted(by_branch))])
        lines = tuple(
            SaleLine.priced(product_id_for(ProductLine(line), price), ProductLine(line), price_line(price, quantity))
            for (line, price), quantity in basket.items
        )
        event = build_event(
            invoice_id="template", source="api", region="bench", branch=Branch(basket.branch),
            sold_at=datetime.now(UTC), payment=PaymentMethod(basket.payment),
            customer_type=CustomerType(basket.customer_type), gender=Gender(basket.gender),
            rating=Decimal(basket.rating), lines=lines,
        )  # fmt: skip
        templates.append(sale_row(event))
    return templates


def _rows(deadline: float, seed: int) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(seed)
    templates = sale_templates(seed)
    while time.monotonic() < deadline:
        now = datetime.now(UTC)
        local = now.astimezone(STORE_TZ)
        row = {
            **rng.choice(templates),
            "invoice_id": str(uuid.uuid4()),
            "sold_at": now,
            "day": local.date(),
            "hour": local.hour,
        }
        yield tuple(row[column] for column in SALE_COLUMNS)


def _writer(task: tuple[str, list[str], str, float, int, int]) -> tuple[int, int]:
    dc, addresses, consistency, seconds, concurrency, seed = task
    cluster = connect(dc, addresses, consistency)
    try:
        session = cluster.connect(BENCH_KEYSPACE)
        insert = session.prepare(
            f"INSERT INTO {TABLE} ({', '.join(SALE_COLUMNS)}) VALUES ({', '.join('?' * len(SALE_COLUMNS))})"
        )
        rows = errors = 0
        deadline = time.monotonic() + seconds
        for ok, _ in execute_concurrent_with_args(
            session, insert, _rows(deadline, seed), concurrency=concurrency, raise_on_first_error=False,
            results_generator=True,
        ):  # fmt: skip
            rows += ok
            errors += not ok
        return rows, errors
    finally:
        cluster.shutdown()


def measure(
    targets: Targets, *, seconds: float = 30, processes: int = 2, concurrency: int = 128, consistency: str
) -> RawCassandra:
    """Writers spread over the DCs (one coordinator DC each, as the three regional consumers)."""
    create_bench_table(targets)
    dcs = list(targets.cassandra_by_dc.items())
    tasks = [
        (dcs[i % len(dcs)][0], dcs[i % len(dcs)][1], consistency, seconds, concurrency, i) for i in range(processes)
    ]
    started = time.monotonic()
    # spawn, not fork: the driver's threads do not survive a fork.
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        results = pool.map(_writer, tasks)
    elapsed = time.monotonic() - started
    drop_bench_keyspace(targets)
    rows = sum(r for r, _ in results)
    return RawCassandra(rows / seconds, rows, sum(e for _, e in results), elapsed, processes, concurrency, consistency)
