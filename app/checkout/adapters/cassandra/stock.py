"""Stock levels and movements in the branch's region keyspace (inventory.py's rules)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from checkout.adapters.cassandra.regions import PerRegion
from checkout.adapters.cassandra.session import Cassandra
from checkout.domain import Branch
from checkout.inventory import (
    FoldedLevel,
    StockLevel,
    StockMovement,
    fold,
    settled_until,
    store_day,
    unsettled_days,
)

log = logging.getLogger(__name__)


class _Statements:
    def __init__(self, db: Cassandra, keyspace: str) -> None:
        self.move = db.prepare(
            f"INSERT INTO {keyspace}.stock_moves "
            "(branch, day, product_id, movement_id, delta, moved_at) VALUES (?, ?, ?, ?, ?, ?)"
        )
        self.moved = db.prepare(
            f"SELECT sum(delta) AS moved FROM {keyspace}.stock_moves "
            "WHERE branch = ? AND day = ? AND product_id = ?"
        )
        self.folded = db.prepare(
            f"SELECT level, as_of FROM {keyspace}.stock_levels WHERE branch = ? AND product_id = ?"
        )
        self.all_folded = db.prepare(
            f"SELECT product_id, level, as_of FROM {keyspace}.stock_levels WHERE branch = ?"
        )
        self.day_moves = db.prepare(
            f"SELECT product_id, delta FROM {keyspace}.stock_moves WHERE branch = ? AND day = ?"
        )
        self.set_folded = db.prepare(
            f"INSERT INTO {keyspace}.stock_levels (branch, product_id, level, as_of) "
            "VALUES (?, ?, ?, ?)"
        )


class CassandraStockLedger:
    def __init__(
        self,
        db: Cassandra,
        shared_keyspace: str,
        branch_dcs: Mapping[Branch, str],
        initial_stock: int,
        today: Callable[[], date] = lambda: store_day(datetime.now(UTC)),
    ) -> None:
        self._db = db
        self._regions = PerRegion(db, shared_keyspace, branch_dcs, _Statements)
        self._initial_stock = initial_stock
        self._today = today

    def _where(self, branch: Branch) -> tuple[_Statements, str]:
        return self._regions.of_branch(branch)

    async def record(self, movements: Sequence[StockMovement]) -> None:
        """One request per (branch, day): a sale's movements share that partition."""
        groups: dict[tuple[Branch, date], list[StockMovement]] = {}
        for movement in movements:
            groups.setdefault((movement.branch, movement.day), []).append(movement)
        writes = []
        for (branch, day), group in groups.items():
            statements, dc = self._where(branch)
            rows = [
                (branch.value, day, m.product_id, m.movement_id, m.delta, m.moved_at) for m in group
            ]
            writes.append(self._db.execute_batch(statements.move, rows, dc=dc))
        await asyncio.gather(*writes)

    async def level(self, branch: Branch, product_id: str) -> StockLevel:
        statements, dc = self._where(branch)
        today = self._today()
        rows = await self._db.execute(statements.folded, (branch.value, product_id), dc=dc)
        folded = _folded(rows, self._initial_stock, today)
        days = unsettled_days(folded, today)
        sums = await asyncio.gather(
            *(
                self._db.execute(statements.moved, (branch.value, day, product_id), dc=dc)
                for day in days
            )
        )
        by_day = {
            day: (found[0].moved or 0) if found else 0
            for day, found in zip(days, sums, strict=True)
        }
        settled = fold(folded, by_day, settled_until(today))
        if settled != folded:
            # Deterministic: another node folding the same days writes the same values.
            params = (branch.value, product_id, settled.level, settled.as_of)
            await self._db.execute(statements.set_folded, params, dc=dc)
        return StockLevel(branch, product_id, folded.level + sum(by_day.values()))

    async def _read_all(self, statement: Any, params: Sequence[Any]) -> list[Any]:
        """A whole partition, paged, off the event loop (the driver's paging is blocking)."""

        def read() -> list[Any]:
            return list(self._db.read_all(statement, params))

        return await asyncio.to_thread(read)

    async def sweep(self, branch: Branch) -> int:
        """Fold every settled day into every level of the branch; returns levels written.

        Run hourly by the API of the branch's home region, so that a level nobody reads
        still gets folded long before its movements expire, and every read stays a row
        plus a few days. After the first sweep of a day it finds nothing to do."""
        statements, dc = self._where(branch)
        if dc != self._db.local_dc:
            raise ValueError(f"branch {branch} is swept in its home DC {dc}, not here")
        until = settled_until(self._today())
        rows = await self._read_all(statements.all_folded, (branch.value,))
        folded = {row.product_id: _folded([row], self._initial_stock, until) for row in rows}
        behind = {pid: f for pid, f in folded.items() if f.as_of < until}
        if not behind:
            return 0
        oldest = min(f.as_of for f in behind.values())
        sums: dict[str, dict[date, int]] = {pid: {} for pid in behind}
        day = oldest + timedelta(days=1)
        while day <= until:
            for move in await self._read_all(statements.day_moves, (branch.value, day)):
                if move.product_id in sums:
                    by_day = sums[move.product_id]
                    by_day[day] = by_day.get(day, 0) + move.delta
            day += timedelta(days=1)
        slots = asyncio.Semaphore(16)

        async def write(pid: str, level: FoldedLevel) -> None:
            settled = fold(level, sums[pid], until)
            async with slots:
                params = (branch.value, pid, settled.level, settled.as_of)
                await self._db.execute(statements.set_folded, params, dc=dc)

        await asyncio.gather(*(write(pid, level) for pid, level in behind.items()))
        log.info("folded the stock of branch %s up to %s: %d levels", branch, until, len(behind))
        return len(behind)


def _folded(rows: Sequence[Any], initial_stock: int, today: date) -> FoldedLevel:
    if rows:
        as_of = rows[0].as_of
        # cassandra-driver returns its own Date type for CQL `date` columns.
        day = as_of if isinstance(as_of, date) else as_of.date()
        return FoldedLevel(rows[0].level, day)
    # Never seeded (a product added after the schema run): the initial level, with the
    # days a movement may still be unsettled on top.
    return FoldedLevel(initial_stock, settled_until(today) - timedelta(days=1))
