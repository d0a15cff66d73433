"""checkout-reconcile: settle charges that were approved but whose sale was never stored.

A checkout charges first and stores the sale after (checkout.service). When the steps
after the charge fail (Kafka cannot confirm the sale, say, in a region cut off from the
others), the API answers 503 and the till retries with its Idempotency-Key, which
finishes the sale without charging twice. A till that gives up, or dies, leaves a charge
without a sale. This finds them in the acquirer's report of approved charges and voids
each one older than `--older-than-min` whose sale is not in Cassandra, so the shopper
gets the money back:

    checkout-reconcile [--older-than-min 30] [--since-h 24] [--void]
                       [--textfile PATH [--every-min 15]]

Without --void it only reports. With --textfile it also writes the run's outcome for the
node exporter's textfile collector (checkout.reconcile_metrics), failed runs included.

It refuses to void while the Kafka->Cassandra writer is behind: a sale may be in Kafka,
published, and not yet stored. The age keeps it clear of a till still retrying: a till
retries for about a minute, the default age is half an hour; a checkout retried with its
key after its charge was voided is charged and sold anew.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from checkout.adapters.cassandra.sales import CassandraSaleFinder
from checkout.adapters.cassandra.session import Cassandra
from checkout.adapters.gateway_http import HttpPaymentGateway
from checkout.adapters.kafka_lag import consumer_lag
from checkout.config import get_settings
from checkout.errors import DependencyUnavailable
from checkout.payments import ApprovedCharge
from checkout.reconcile_metrics import write_run

PAGE = 500  # charges per report request (the gateway answers at most 1000)


class ChargeReport(Protocol):
    async def approved_before(
        self, before: datetime, limit: int, after: ApprovedCharge | None = None
    ) -> list[ApprovedCharge]: ...

    async def void(self, key: str) -> None: ...


class SaleFinder(Protocol):
    async def stored(self, invoice_id: str, sold_at: datetime) -> bool: ...


@dataclass(frozen=True)
class Reconciled:
    checked: int  # approved charges older than the cut-off
    with_sale: int
    without_sale: list[str]  # their keys
    voided: int


async def reconcile(
    charges: ChargeReport,
    sales: SaleFinder,
    *,
    older_than: timedelta,
    since: timedelta,
    void: bool,
    writer_lag: Callable[[], Awaitable[int]],
    page_size: int = PAGE,
    now: datetime | None = None,
) -> Reconciled:
    """Approved charges decided between `since` and `older_than` ago, page by page."""
    now = now or datetime.now(UTC)
    cursor = ApprovedCharge("", "", now - since)
    checked, orphans = 0, []
    while True:
        page = await charges.approved_before(now - older_than, page_size, cursor)
        found = await asyncio.gather(*(sales.stored(c.reference, c.decided_at) for c in page))
        checked += len(page)
        orphans += [c.key for c, stored in zip(page, found, strict=True) if not stored]
        if len(page) < page_size:
            break
        cursor = page[-1]
    if orphans and void:
        lag = await writer_lag()
        if lag:
            raise DependencyUnavailable(
                f"the sales writer is {lag} records behind; a sale of these charges may be "
                "on its way: run again once checkout-consumer has caught up"
            )
        for key in orphans:
            await charges.void(key)
    return Reconciled(checked, checked - len(orphans), orphans, len(orphans) if void else 0)


async def _run(args: argparse.Namespace) -> Reconciled:
    settings = get_settings()
    db = Cassandra(settings)
    gateway = HttpPaymentGateway(settings.payment_gateway_url, settings.payment_timeout_s)

    async def lag() -> int:
        return await asyncio.to_thread(
            consumer_lag,
            settings.kafka_bootstrap,
            settings.kafka_consumer_group,
            settings.kafka_sales_topic,
        )

    try:
        return await reconcile(
            gateway,
            CassandraSaleFinder(db, settings.cassandra_keyspace),
            older_than=timedelta(minutes=args.older_than_min),
            since=timedelta(hours=args.since_h),
            void=args.void,
            writer_lag=lag,
        )
    finally:
        await gateway.aclose()
        db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="checkout-reconcile",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--older-than-min", type=float, default=30.0, help="skip younger charges")
    parser.add_argument(
        "--since-h", type=float, default=24.0, help="look this far back (the gateway keeps 24 h)"
    )
    parser.add_argument("--void", action="store_true", help="void them (default: report only)")
    parser.add_argument(
        "--textfile", type=Path, help="write the run's gauges here (a .prom file for node exporter)"
    )
    parser.add_argument(
        "--every-min", type=float, help="the timer's interval, written with --textfile for alerts"
    )
    args = parser.parse_args(argv)
    if args.older_than_min < 0 or args.since_h * 60 <= args.older_than_min:
        parser.error("--older-than-min must be >= 0 and --since-h longer than it")
    if args.every_min is not None and (args.textfile is None or args.every_min <= 0):
        parser.error("--every-min needs --textfile and must be > 0")
    logging.basicConfig(level=logging.WARNING)
    done: Reconciled | None = None
    try:
        done = asyncio.run(_run(args))
    except DependencyUnavailable as error:
        print(f"checkout-reconcile: {error}", file=sys.stderr)
        return 1
    finally:
        if args.textfile is not None:
            write_run(
                args.textfile,
                now=time.time(),
                succeeded=done is not None,
                every_s=args.every_min * 60 if args.every_min else None,
                without_sale=len(done.without_sale) if done else None,
                voided=done.voided if done else None,
            )
    print(
        f"approved charges {args.older_than_min:g} min to {args.since_h:g} h old: {done.checked}; "
        f"with their sale: {done.with_sale}; without: {len(done.without_sale)}; "
        f"voided: {done.voided}"
    )
    for key in done.without_sale:
        print(f"  {'voided' if args.void else 'no sale'}: {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
