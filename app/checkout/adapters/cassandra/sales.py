"""The consumer's writes: one row per sale in the shared keyspace, and the day index; and
the reconciler's lookup of a sale by invoice and time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import date, datetime
from typing import Any

from cassandra.query import PreparedStatement

from checkout.adapters.cassandra.session import Cassandra, insert_cql
from checkout.cql import SALES_TTL_SECONDS
from checkout.domain import Branch
from checkout.events import SALE_COLUMNS, SaleEvent, sale_row
from checkout.inventory import store_day

# How long the writer trusts that it wrote a (branch, day) into the day index: the row
# changes once a day per branch, so it is rewritten hourly, not with every sale. That
# keeps its TTL within an hour of the day's newest sale rows.
DAY_INDEX_REFRESH_S = 3600.0


class CassandraSaleWriter:
    """Writes sale events: the sale row (one per invoice) and the day index. Stock is not
    the consumer's: the API moved it when the payment was approved."""

    def __init__(
        self,
        db: Cassandra,
        concurrency: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._slots = asyncio.Semaphore(concurrency)
        self._clock = clock
        self._days_written: dict[tuple[str, date], float] = {}
        self._insert = db.prepare(
            f"{insert_cql('sales', SALE_COLUMNS)} USING TTL {SALES_TTL_SECONDS}"
        )
        self._day = db.prepare(
            f"INSERT INTO sale_days (branch, day) VALUES (?, ?) USING TTL {SALES_TTL_SECONDS}"
        )

    async def _run(self, statement: PreparedStatement, params: Sequence[Any]) -> None:
        async with self._slots:
            await self._db.execute(statement, params)

    def _day_written_since(self, day: tuple[str, date], since: float) -> bool:
        written = self._days_written.get(day)
        return written is not None and written > since

    async def write(self, events: Sequence[SaleEvent]) -> None:
        """Write every event or raise; a partial write is repaired by writing it again."""
        writes: list[Coroutine[Any, Any, None]] = []
        days: set[tuple[str, date]] = set()
        for event in events:
            row = sale_row(event)
            writes.append(self._run(self._insert, [row[column] for column in SALE_COLUMNS]))
            days.add((row["branch"], row["day"]))
        now = self._clock()
        stale = sorted(d for d in days if not self._day_written_since(d, now - DAY_INDEX_REFRESH_S))
        writes.extend(self._run(self._day, day) for day in stale)
        await asyncio.gather(*writes)
        # Only once they are stored: a failed batch is written again, day index included.
        self._days_written.update(dict.fromkeys(stale, now))


class CassandraSaleFinder:
    """Whether a sale is stored, by its invoice id and sale time (checkout.reconcile)."""

    def __init__(self, db: Cassandra, keyspace: str) -> None:
        self._db = db
        self._find = db.prepare(
            f"SELECT invoice_id FROM {keyspace}.sales"
            " WHERE branch = ? AND day = ? AND sold_at = ? AND invoice_id = ?"
        )

    async def stored(self, invoice_id: str, sold_at: datetime) -> bool:
        """Looked up in every branch's day partition: a charge does not name its branch."""
        found = await asyncio.gather(
            *(
                self._db.execute(
                    self._find, (branch.value, store_day(sold_at), sold_at, invoice_id)
                )
                for branch in Branch
            )
        )
        return any(found)
