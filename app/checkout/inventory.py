"""Stock per branch and product: a folded level plus the movements since (pure rules).

A movement is keyed by what caused it: a sale's invoice id, a restock's Idempotency-Key.
Writing it again (a retried checkout, a retried restock) rewrites the same row with the
same value, so each sale or restock moves stock exactly once. Counters would
double-count on every retry, so they are not used. A sale is never refused for stock
(the goods are already in the shopper's hands): the level may go negative, and that is
flagged.

Reading a level costs the same however many sales there were: the level row holds every
movement up to a store day (`as_of`), and only the few days after it are added up. Days
older than SETTLE_DAYS are folded into the level row as they are read (and by a sweep),
and folding is deterministic, so two nodes folding at once write the same values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from checkout.domain import STORE_TZ, Branch
from checkout.events import SaleEvent, SaleLine

# A movement may still arrive for a store day this long after it: a checkout retried with
# its key (kept a day) writes its movement into the day of the sale. Older days are settled.
SETTLE_DAYS = 2


@dataclass(frozen=True, slots=True)
class StockMovement:
    branch: Branch
    product_id: str
    movement_id: str
    delta: int
    moved_at: datetime

    @property
    def day(self) -> date:
        return store_day(self.moved_at)


@dataclass(frozen=True, slots=True)
class StockLevel:
    branch: Branch
    product_id: str
    level: int

    @property
    def negative(self) -> bool:
        """More sold than the books say was there: a count or a delivery is missing."""
        return self.level < 0


@dataclass(frozen=True, slots=True)
class FoldedLevel:
    """Every movement up to and including the store day `as_of`."""

    level: int
    as_of: date


class StockLedger(Protocol):
    async def record(self, movements: Sequence[StockMovement]) -> None:
        """Write movements of one branch and day; writing one twice must leave one movement."""
        ...

    async def level(self, branch: Branch, product_id: str) -> StockLevel: ...


class RestockRefused(ValueError):
    """A restock that cannot be a delivery (quantity out of range)."""


MAX_RESTOCK = 100_000


def store_day(moment: datetime) -> date:
    return moment.astimezone(STORE_TZ).date()


def sold_quantities(lines: Iterable[SaleLine]) -> dict[str, int]:
    """Units sold per product: a product on two lines of one invoice moves stock once."""
    quantities: dict[str, int] = {}
    for line in lines:
        quantities[line.product_id] = quantities.get(line.product_id, 0) + line.quantity
    return quantities


def movements_for_sale(event: SaleEvent) -> list[StockMovement]:
    return [
        StockMovement(event.branch, product_id, event.invoice_id, -quantity, event.sold_at)
        for product_id, quantity in sold_quantities(event.lines).items()
    ]


def restock_movement(
    branch: Branch, product_id: str, key: str, quantity: int, now: datetime
) -> StockMovement:
    if not 1 <= quantity <= MAX_RESTOCK:
        raise RestockRefused(f"a restock brings 1 to {MAX_RESTOCK} units, got {quantity}")
    return StockMovement(branch, product_id, f"restock:{key}", quantity, now)


def unsettled_days(folded: FoldedLevel, today: date) -> list[date]:
    """The days whose movements are added on top of the folded level, oldest first."""
    return [folded.as_of + timedelta(days=n) for n in range(1, (today - folded.as_of).days + 1)]


def settled_until(today: date) -> date:
    """The newest day no movement can arrive for any more."""
    return today - timedelta(days=SETTLE_DAYS)


def fold(folded: FoldedLevel, sums: dict[date, int], until: date) -> FoldedLevel:
    """The level with the movements of every day up to `until` folded in (`sums` by day)."""
    if until <= folded.as_of:
        return folded
    moved = sum(delta for day, delta in sums.items() if folded.as_of < day <= until)
    return FoldedLevel(folded.level + moved, until)
