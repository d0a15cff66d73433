"""What a run left behind: consumer lag on Kafka, and the acknowledged sales in Cassandra."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from cassandra.cluster import Cluster, Session
from cassandra.concurrent import execute_concurrent_with_args
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from loadtest.raw_cassandra import connect
from loadtest.targets import Targets

SALES_TOPIC = "checkout-sales"
CONSUMER_GROUP = "checkout-cassandra-writer"
KEYSPACE = "checkout"
# app/checkout/domain.py STORE_TZ: the supermarket's stores are in Myanmar.
STORE_TZ = timezone(timedelta(hours=6, minutes=30), "MMT")


def consumer_lag(bootstrap: list[str], group: str = CONSUMER_GROUP, topic: str = SALES_TOPIC) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            raise RuntimeError(f"topic {topic} not found on {bootstrap}")
        committed = admin.list_group_offsets({group: partitions})[group]
        ends = consumer.end_offsets(partitions)
        # A partition the group never committed counts from its start.
        return sum(ends[tp] - max(committed[tp].offset if tp in committed else 0, 0) for tp in partitions)
    finally:
        consumer.close()
        admin.close()


def seconds_to_zero_lag(bootstrap: list[str], give_up_s: float = 120.0) -> float | None:
    """Seconds from now until the writer has caught up (None if it did not within give_up_s)."""
    started = time.monotonic()
    lag = consumer_lag(bootstrap)
    while lag > 0 and time.monotonic() - started < give_up_s:
        time.sleep(0.25)
        lag = consumer_lag(bootstrap)
    return time.monotonic() - started if lag == 0 else None


@dataclass(frozen=True)
class StoredSales:
    acked: int
    found: int
    lines: int  # sale lines (products) of the found sales
    missing: list[str]
    in_window: int  # distinct invoices in the branch/day partitions during the run
    duplicated: list[str]  # invoices stored under more than one sale time
    unexpected: list[str]  # invoices in the window the run never saw acknowledged


def _session(targets: Targets) -> tuple[Cluster, Session]:
    # QUORUM over all DCs: the rows were written at LOCAL_QUORUM in some region.
    cluster = connect(*next(iter(targets.cassandra_by_dc.items())), "QUORUM")
    return cluster, cluster.connect(KEYSPACE)


def store_days(start: datetime, end: datetime) -> Iterable[date]:
    """The day partitions a run's sales went to: days of the stores' clock (the app's
    STORE_TZ, UTC+6:30), which is a day ahead of UTC from 17:30 UTC on."""
    day = start.astimezone(STORE_TZ).date()
    while day <= end.astimezone(STORE_TZ).date():
        yield day
        day += timedelta(days=1)


def stored_sales(targets: Targets, acked: list[str], start: datetime, end: datetime) -> StoredSales:
    cluster, session = _session(targets)
    try:
        by_invoice = session.prepare("SELECT line_no FROM sales_by_invoice WHERE invoice_id = ?")
        wanted = sorted(set(acked))
        results = execute_concurrent_with_args(session, by_invoice, [(i,) for i in wanted], concurrency=100)
        lines_of = {invoice: len(list(rows)) if ok else 0 for invoice, (ok, rows) in zip(wanted, results, strict=True)}
        missing = [invoice for invoice, lines in lines_of.items() if lines == 0]

        in_window = session.prepare(
            "SELECT invoice_id, sold_at FROM sales_by_branch_day"
            " WHERE branch = ? AND day = ? AND sold_at >= ? AND sold_at <= ?"
        )
        times: dict[str, set[datetime]] = {}
        for branch in sorted(targets.api_by_branch):
            for day in store_days(start, end):
                for row in session.execute(in_window, (branch, day, start, end)):
                    times.setdefault(row.invoice_id, set()).add(row.sold_at)
    finally:
        cluster.shutdown()
    acked_set = set(wanted)
    return StoredSales(
        acked=len(wanted),
        found=len(wanted) - len(missing),
        lines=sum(lines_of.values()),
        missing=missing,
        in_window=len(times),
        duplicated=sorted(i for i, t in times.items() if len(t) > 1),
        unexpected=sorted(set(times) - acked_set),
    )
