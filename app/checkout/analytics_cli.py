"""checkout-analytics: the sales reports as tables and PNG charts.

checkout-analytics csv     reports straight from the dataset file (no cluster needed)
checkout-analytics batch   reports over the sales stored in Cassandra
checkout-analytics stream  running totals fed by the Kafka sales topic
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from types import FrameType

from checkout.adapters.cassandra.session import Cassandra
from checkout.analytics import (
    DIMENSIONS,
    Aggregator,
    SaleFact,
    facts_from_event,
    facts_from_sale,
    format_table,
    write_chart,
)
from checkout.config import Settings, get_settings
from checkout.consumer import decode, make_consumer, poll
from checkout.dataset import packaged_dataset_lines, parse_lines
from checkout.domain import Branch
from checkout.errors import DependencyUnavailable
from checkout.events import SALE_COLUMNS, SaleEvent, event_from_row


def stored_facts(db: Cassandra, first: date | None, last: date | None) -> Iterator[SaleFact]:
    """Read every stored sale, one (branch, day) partition of `sales` at a time, as one
    fact per line of each invoice row."""
    days = db.prepare("SELECT day FROM sale_days WHERE branch = ?")
    sales = db.prepare(f"SELECT {', '.join(SALE_COLUMNS)} FROM sales WHERE branch = ? AND day = ?")
    for branch in Branch:
        for day_row in db.read_all(days, (branch.value,)):
            day = day_row.day.date()
            if (first and day < first) or (last and day > last):
                continue
            for row in db.read_all(sales, (branch.value, day_row.day)):
                yield from facts_from_sale(row._asdict())


def _print_and_chart(aggregator: Aggregator, names: list[str], out: Path | None, note: str) -> None:
    print(f"{aggregator.facts} sale lines {note}\n")
    for name in names:
        rows = aggregator.report(name)
        print(format_table(name, rows), end="\n\n")
        if out is not None:
            print(f"chart: {write_chart(name, rows, out, f' ({note})')}")


def _from_csv(args: argparse.Namespace, aggregator: Aggregator) -> str:
    lines = args.csv.read_text("utf-8").splitlines() if args.csv else packaged_dataset_lines()
    parsed = parse_lines(lines)
    for error in parsed.errors:
        print(f"checkout-analytics: {error} (skipped)", file=sys.stderr)
    for row in parsed.rows:
        for fact in facts_from_event(event_from_row(row)):
            aggregator.add(fact)
    return f"from {args.csv or 'the packaged dataset'}"


def _from_cassandra(args: argparse.Namespace, settings: Settings, aggregator: Aggregator) -> str:
    db = Cassandra(settings)
    try:
        aggregator.add_all(stored_facts(db, args.date_from, args.date_to))
    finally:
        db.close()
    return f"stored in Cassandra keyspace {settings.cassandra_keyspace}"


def _from_kafka(args: argparse.Namespace, settings: Settings, aggregator: Aggregator) -> str:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # A fresh group that never commits reads the topic from its oldest retained event.
    group = args.group or f"checkout-analytics-{uuid.uuid4().hex[:8]}"
    consumer = make_consumer(settings, group, client_id=group)
    deadline = time.monotonic() + args.duration if args.duration else None
    next_print = time.monotonic() + args.every
    skipped = 0
    try:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            for record in poll(consumer, 500):
                decoded = decode(record)
                if isinstance(decoded, SaleEvent):
                    for fact in facts_from_event(decoded):
                        aggregator.add(fact)
                else:
                    skipped += 1
            if time.monotonic() >= next_print:
                print(format_table("branch", aggregator.report("branch")), end="\n\n")
                next_print += args.every
    finally:
        consumer.close(autocommit=False)
    return f"streamed from {settings.kafka_sales_topic} ({skipped} unreadable messages skipped)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="checkout-analytics",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--report",
        action="append",
        choices=sorted(DIMENSIONS),
        help="report to produce (repeatable; default: all)",
    )
    common.add_argument("--out", type=Path, help="write a PNG chart per report into this folder")
    sources = parser.add_subparsers(dest="source", required=True)
    from_csv = sources.add_parser("csv", parents=[common], help="from the dataset CSV")
    from_csv.add_argument("--csv", type=Path, help="default: the dataset shipped in the package")
    batch = sources.add_parser("batch", parents=[common], help="from Cassandra")
    batch.add_argument("--from", dest="date_from", type=date.fromisoformat, help="YYYY-MM-DD")
    batch.add_argument("--to", dest="date_to", type=date.fromisoformat, help="YYYY-MM-DD")
    stream = sources.add_parser("stream", parents=[common], help="running totals from Kafka")
    stream.add_argument("--every", type=float, default=10.0, help="print totals every N s")
    stream.add_argument("--duration", type=float, help="stop after N s (default: on Ctrl-C)")
    stream.add_argument("--group", help="consumer group (default: a fresh one, from the start)")
    args = parser.parse_args(argv)

    names = args.report or list(DIMENSIONS)
    aggregator = Aggregator(names)
    settings = get_settings()
    try:
        if args.source == "csv":
            note = _from_csv(args, aggregator)
        elif args.source == "batch":
            note = _from_cassandra(args, settings, aggregator)
        else:
            note = _from_kafka(args, settings, aggregator)
    except (DependencyUnavailable, OSError) as error:
        print(f"checkout-analytics: {error}", file=sys.stderr)
        return 1
    _print_and_chart(aggregator, names, args.out, note)
    return 0
