"""What a run left behind: consumer lag on Kafka, and the acknowledged sales in Cassandra.

A sale is one row of `checkout.sales` (one per invoice, its lines inside), found by its
branch, store day and sale time: the audit reads the run's window of every branch's day
partitions in every DC and expects each acknowledged invoice exactly once in each, and no
invoice the run did not acknowledge.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cassandra.cluster import Cluster, Session
from checkout.adapters.kafka_lag import consumer_lag
from checkout.domain import STORE_TZ, Branch
from checkout.events import stored_lines

from loadtest.raw_cassandra import connect
from loadtest.targets import Targets

SALES_TOPIC = "checkout-sales"
CONSUMER_GROUP = "checkout-cassandra-writer"
KEYSPACE = "checkout"  # roles/checkout_app: checkout_app_cassandra_keyspace, the shared keyspace
# Sales stamped this close outside the run's window (a clock step, a request in flight at
# the edges) are still found; only those inside it count as unexpected.
WINDOW_MARGIN = timedelta(seconds=60)


def seconds_to_zero_lag(bootstrap: list[str], give_up_s: float = 120.0) -> float | None:
    """Seconds from now until the writer has caught up (None if it did not within give_up_s)."""
    started = time.monotonic()
    lag = consumer_lag(bootstrap, CONSUMER_GROUP, SALES_TOPIC)
    while lag > 0 and time.monotonic() - started < give_up_s:
        time.sleep(0.25)
        lag = consumer_lag(bootstrap, CONSUMER_GROUP, SALES_TOPIC)
    return time.monotonic() - started if lag == 0 else None


@dataclass(frozen=True)
class StoredSales:
    acked: int
    found: int  # acknowledged invoices with exactly one row in every DC read
    lines: int  # sale lines (products) inside the found invoices' rows
    missing: list[str]  # acknowledged invoices without a row in some DC
    in_window: int  # distinct invoices stored during the run (any DC)
    duplicated: list[str]  # invoices with more than one row in some DC (stored under two sale times)
    unexpected: list[str]  # invoices stored during the run that it never saw acknowledged
    dcs: tuple[str, ...] = ()  # the DCs read


def store_days(start: datetime, end: datetime) -> Iterable[date]:
    """The day partitions a run's sales went to: days of the stores' clock (the app's
    STORE_TZ, UTC+6:30), which is a day ahead of UTC from 17:30 UTC on."""
    day = start.astimezone(STORE_TZ).date()
    while day <= end.astimezone(STORE_TZ).date():
        yield day
        day += timedelta(days=1)


def _utc(moment: datetime) -> datetime:
    # cassandra-driver returns timestamps as naive UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def audit(
    acked: Iterable[str], rows_by_dc: Mapping[str, Iterable[Mapping[str, Any]]], start: datetime, end: datetime
) -> StoredSales:
    """Judge the `sales` rows (invoice_id, sold_at, lines) each DC holds around the run."""
    wanted = set(acked)
    missing: set[str] = set()
    duplicated: set[str] = set()
    in_window: set[str] = set()
    lines: dict[str, int] = {}
    for rows in rows_by_dc.values():
        rows_of: dict[str, list[Mapping[str, Any]]] = {}
        for row in rows:
            rows_of.setdefault(row["invoice_id"], []).append(row)
        missing |= wanted - rows_of.keys()
        duplicated |= {invoice for invoice, stored in rows_of.items() if len(stored) > 1}
        in_window |= {
            invoice
            for invoice, stored in rows_of.items()
            if any(start <= _utc(row["sold_at"]) <= end for row in stored)
        }
        for invoice in wanted & rows_of.keys():
            lines.setdefault(invoice, len(stored_lines(rows_of[invoice][0])))
    found = wanted - missing - duplicated
    return StoredSales(
        acked=len(wanted),
        found=len(found),
        lines=sum(lines[invoice] for invoice in found),
        missing=sorted(missing),
        in_window=len(in_window),
        duplicated=sorted(duplicated),
        unexpected=sorted(in_window - wanted),
        dcs=tuple(rows_by_dc),
    )


def window_rows(session: Session, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The `sales` rows (branch, day, invoice_id, sold_at, lines) of every branch sold between
    start and end (with the margin)."""
    statement = session.prepare(
        f"SELECT branch, day, invoice_id, sold_at, lines FROM {KEYSPACE}.sales"
        " WHERE branch = ? AND day = ? AND sold_at >= ? AND sold_at <= ?"
    )
    low, high = start - WINDOW_MARGIN, end + WINDOW_MARGIN
    return [
        row._asdict()
        for branch in Branch
        for day in store_days(low, high)
        for row in session.execute(statement, (branch.value, day, low, high))
    ]


def rows_by_dc(targets: Targets, start: datetime, end: datetime) -> dict[str, list[dict[str, Any]]]:
    """Every DC's copy of the window's `sales` rows, each read at LOCAL_QUORUM in that DC."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for dc, addresses in targets.cassandra_by_dc.items():
        cluster: Cluster = connect(dc, addresses, "LOCAL_QUORUM")
        try:
            rows[dc] = window_rows(cluster.connect(), start, end)
        finally:
            cluster.shutdown()
    return rows


def stored_sales(targets: Targets, acked: list[str], start: datetime, end: datetime) -> StoredSales:
    """Every DC's copy: the rows were written at LOCAL_QUORUM in the sale's region and must
    have reached the others too."""
    return audit(acked, rows_by_dc(targets, start, end), start, end)
