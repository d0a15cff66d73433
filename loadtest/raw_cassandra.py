"""The raw Cassandra write ceiling for the sale row shape, to compare the pipeline with.

cassandra-stress is not published on Maven Central for Cassandra 5.0 (the lab assembles
Cassandra from the cassandra-all jars), so this plays its part: processes on the
controller write rows shaped exactly like `sales_by_branch_day` (a copy of its schema,
same replication, same consistency level) as fast as the cluster takes them, with the
same driver and load-balancing policy the consumer uses, and count what was acknowledged.
"""

from __future__ import annotations

import multiprocessing
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy

from loadtest import shopper
from loadtest.targets import Targets

SOURCE_KEYSPACE = "checkout"
BENCH_KEYSPACE = "checkout_bench"
TABLE = "sales_by_branch_day"
CITY = {"A": "Yangon", "B": "Mandalay", "C": "Naypyitaw"}


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


def _rows(deadline: float, seed: int) -> Any:
    rng = random.Random(seed)
    sales = shopper.load_sales()
    while time.monotonic() < deadline:
        sale = rng.choice(sales)
        now = datetime.now(UTC)
        line, price = sale.product
        total = (price * sale.quantity * Decimal("1.05")).quantize(Decimal("0.0001"))
        cogs = price * sale.quantity
        yield (
            sale.branch, now.date(), now, str(uuid.uuid4()), 1, now.hour, CITY[sale.branch], "bench", "bench",
            sale.payment, sale.customer_type, sale.gender, Decimal(sale.rating), "bench", line, price,
            sale.quantity, cogs, total - cogs, total, total - cogs, Decimal("4.761904762"),
        )  # fmt: skip


def _writer(task: tuple[str, list[str], str, float, int, int]) -> tuple[int, int]:
    dc, addresses, consistency, seconds, concurrency, seed = task
    cluster = connect(dc, addresses, consistency)
    try:
        session = cluster.connect(BENCH_KEYSPACE)
        insert = session.prepare(
            f"INSERT INTO {TABLE} (branch, day, sold_at, invoice_id, line_no, hour, city, region, source, payment, "
            "customer_type, gender, rating, product_id, product_line, unit_price, quantity, cogs, tax, total, "
            "gross_income, gross_margin_pct) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
