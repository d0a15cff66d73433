"""checkout-replay: replay the sales CSV into Kafka, for backfill and demos.

The whole file is validated before the first message is sent: malformed rows are
reported with their line numbers and skipped, or, with --strict, stop the run before
anything is sent. Rows go out in batches (10 by default) and a batch is acknowledged by
the brokers (acks=all) before the next one leaves, so a failed run stops at a known
batch; re-running is safe because the consumer keys every row by invoice id.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from kafka.errors import KafkaError

from checkout.config import Settings, get_settings
from checkout.dataset import packaged_dataset_lines, parse_lines
from checkout.errors import DependencyUnavailable
from checkout.events import SaleEvent, event_from_row
from checkout.producer import make_producer, sale_record, send

PublishBatch = Callable[[Sequence[SaleEvent]], None]


def batches(events: Sequence[SaleEvent], size: int) -> list[Sequence[SaleEvent]]:
    return [events[start : start + size] for start in range(0, len(events), size)]


def replay(
    events: Sequence[SaleEvent],
    publish_batch: PublishBatch,
    *,
    batch_size: int,
    rate: float | None,
    loop: bool,
    stop: threading.Event,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Send events batch by batch at most `rate` rows/s; return how many were sent."""
    sent = 0
    started = clock()
    while not stop.is_set():
        for batch in batches(events, batch_size):
            if stop.is_set():
                break
            publish_batch(batch)
            sent += len(batch)
            if rate:
                # Pace against the start, not per batch, so slow batches are caught up.
                stop.wait(max(0.0, started + sent / rate - clock()))
        if not loop:
            break
    return sent


def kafka_batch_publisher(producer: Any, settings: Settings) -> PublishBatch:
    def publish_batch(batch: Sequence[SaleEvent]) -> None:
        futures = [
            send(producer, settings.kafka_sales_topic, *sale_record(event)) for event in batch
        ]
        for future in futures:
            future.get(timeout=settings.kafka_publish_timeout_s)

    return publish_batch


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="checkout-replay", description="Replay the supermarket sales CSV into Kafka."
    )
    parser.add_argument(
        "--csv", type=Path, help="CSV to replay (default: the dataset shipped in the package)"
    )
    parser.add_argument("--batch-size", type=_positive_int, default=10, help="rows per batch")
    parser.add_argument("--rate", type=_positive_float, help="at most this many rows per second")
    parser.add_argument(
        "--loop",
        action="store_true",
        help="replay again and again until interrupted (same invoice ids: stored once)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="send nothing if any row is malformed"
    )
    parser.add_argument(
        "--check", action="store_true", help="validate the file and report; send nothing"
    )
    args = parser.parse_args(argv)
    settings = get_settings()

    try:
        lines = args.csv.read_text("utf-8").splitlines() if args.csv else packaged_dataset_lines()
    except OSError as error:
        print(f"checkout-replay: cannot read {args.csv}: {error}", file=sys.stderr)
        return 2
    parsed = parse_lines(lines)
    outcome = "" if args.strict else " (skipped)"
    for row_error in parsed.errors:
        print(f"checkout-replay: {row_error}{outcome}", file=sys.stderr)
    print(f"{len(parsed.rows)} valid rows, {len(parsed.errors)} malformed", file=sys.stderr)
    if parsed.errors and args.strict:
        print("checkout-replay: --strict: nothing was sent", file=sys.stderr)
        return 1
    if args.check:
        return 0
    events = [event_from_row(row, settings.region) for row in parsed.rows]

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    try:
        producer = make_producer(settings, client_id=f"checkout-replay-{settings.region}")
    except DependencyUnavailable as error:
        print(f"checkout-replay: {error}", file=sys.stderr)
        return 1
    started = time.monotonic()
    try:
        sent = replay(
            events,
            kafka_batch_publisher(producer, settings),
            batch_size=args.batch_size,
            rate=args.rate,
            loop=args.loop,
            stop=stop,
        )
    except KafkaError as error:
        print(
            f"checkout-replay: Kafka did not acknowledge a batch ({error}); earlier batches "
            "are stored, and re-running is safe (rows are keyed by invoice id)",
            file=sys.stderr,
        )
        return 1
    finally:
        producer.close(timeout=settings.kafka_publish_timeout_s)
    elapsed = time.monotonic() - started
    print(
        f"sent {sent} events to {settings.kafka_sales_topic} in batches of {args.batch_size} "
        f"in {elapsed:.1f}s ({sent / elapsed if elapsed else 0:.0f} rows/s); "
        f"skipped {len(parsed.errors)} malformed rows"
    )
    return 0
