"""Stock per branch and product, as an initial level plus immutable movements.

A movement row is keyed by (branch, product_id, invoice_id), so writing it again for a
retried checkout, a redelivered Kafka message or a dataset replay overwrites the same
row with the same value: each sale moves stock exactly once. Counters would double-count
on every retry, so they are not used. A sale is never refused for stock (the goods are
already in the shopper's hands): the level may go negative, and that is flagged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from checkout.domain import Branch
from checkout.events import SaleEvent


@dataclass(frozen=True, slots=True)
class StockMovement:
    branch: Branch
    product_id: str
    invoice_id: str
    delta: int
    moved_at: datetime


@dataclass(frozen=True, slots=True)
class StockLevel:
    branch: Branch
    product_id: str
    level: int

    @property
    def negative(self) -> bool:
        """More sold than the books say was there: a count or a delivery is missing."""
        return self.level < 0


class StockLedger(Protocol):
    async def record(self, movements: Sequence[StockMovement]) -> None:
        """Write movements; writing one twice must leave one movement."""
        ...

    async def level(self, branch: Branch, product_id: str) -> StockLevel: ...


def movements_for_sale(event: SaleEvent) -> list[StockMovement]:
    quantities: dict[str, int] = {}
    for line in event.lines:
        quantities[line.product_id] = quantities.get(line.product_id, 0) + line.quantity
    return [
        StockMovement(event.branch, product_id, event.invoice_id, -quantity, event.sold_at)
        for product_id, quantity in quantities.items()
    ]
