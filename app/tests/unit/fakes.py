"""In-memory stand-ins for Cassandra and Kafka, for unit tests only."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from checkout.cart import Cart
from checkout.domain import Branch
from checkout.errors import DependencyUnavailable, RequestRejected
from checkout.events import PublishError, SaleEvent
from checkout.inventory import StockLevel, StockMovement


@dataclass
class FakeCartStore:
    """Whole carts by id; counts the writes by kind, can fail the checkout record."""

    carts: dict[str, Cart] = field(default_factory=dict)
    writes: list[str] = field(default_factory=list)
    close_failures_left: int = 0

    async def get(self, cart_id: str, *, fresh: bool = False) -> Cart | None:
        return self.carts.get(cart_id)

    def _put(self, kind: str, cart: Cart) -> None:
        self.writes.append(kind)
        self.carts[cart.cart_id] = cart

    async def create(self, cart: Cart) -> None:
        self._put("create", cart)

    async def add(self, cart: Cart, product_id: str, quantity: int) -> None:
        self._put("add", cart)

    async def remove(self, cart: Cart, product_id: str) -> None:
        self._put("remove", cart)

    async def close(self, cart: Cart) -> None:
        if self.close_failures_left:
            self.close_failures_left -= 1
            raise DependencyUnavailable("Cassandra cannot meet LOCAL_QUORUM (fake)")
        self._put("close", cart)


@dataclass
class FakeStockLedger:
    """Movements keyed like the Cassandra table: (branch, product_id, movement_id)."""

    initial: int = 100
    movements: dict[tuple[str, str, str], StockMovement] = field(default_factory=dict)
    failures_left: int = 0

    async def record(self, movements: Sequence[StockMovement]) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise DependencyUnavailable("Cassandra cannot meet LOCAL_QUORUM (fake)")
        for m in movements:
            self.movements[(m.branch.value, m.product_id, m.movement_id)] = m

    async def level(self, branch: Branch, product_id: str) -> StockLevel:
        moved = sum(
            m.delta
            for (b, p, _), m in self.movements.items()
            if b == branch.value and p == product_id
        )
        return StockLevel(branch, product_id, self.initial + moved)


@dataclass
class FakePublisher:
    events: list[SaleEvent] = field(default_factory=list)
    failures_left: int = 0

    async def publish(self, event: SaleEvent) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise PublishError("broker unavailable (fake)")
        self.events.append(event)


@dataclass
class FakeSaleWriter:
    """Rows keyed by invoice id like the sale tables; can fail or refuse an invoice."""

    rows: dict[str, SaleEvent] = field(default_factory=dict)
    unavailable: bool = False
    rejected_invoices: set[str] = field(default_factory=set)

    async def write(self, events: Sequence[SaleEvent]) -> None:
        if self.unavailable:
            raise DependencyUnavailable("cassandra down (fake)")
        if any(e.invoice_id in self.rejected_invoices for e in events):
            raise RequestRejected("value too large (fake)")
        for event in events:
            self.rows[event.invoice_id] = event


class FakeFuture:
    """A driver ResponseFuture that has already failed or answered."""

    def __init__(self, outcome: Any) -> None:
        self._outcome = outcome

    def add_callbacks(
        self, callback: Callable[[Any], None], errback: Callable[[Any], None]
    ) -> None:
        if isinstance(self._outcome, BaseException):
            errback(self._outcome)
        else:
            callback(self._outcome)
