"""The checkout use cases, over small interfaces for storage, Kafka and the gateway.

Checkout order, and why:
1. Refuse a reused Idempotency-Key with a different request; answer a finished one
   from its record.
2. Record the key as pending before charging, so a later different request is refused
   even if this attempt dies half-way.
3. Charge with the key. Declined: nothing is sold, the answer is stored. Timed out: the
   charge is voided, nothing is sold, the key stays pending so the client may retry.
4. Move stock right away, once the payment is approved (the goods have left with the
   shopper). Movement rows are keyed by the invoice, so a retry rewrites the same rows.
   If they cannot be stored nothing is published; a retry with the key finishes the sale.
5. Publish the sale, marked `stock_moved` so the consumer writes only its sale rows,
   and wait for the broker's ack: from then on the sale is durable. The sale time is the
   gateway's approval time, which every retry of the key gets back, so a retried publish
   is byte-for-byte the same event and lands on the same rows. If the publish fails the
   charge stands (the event may have been stored despite the error); a retry with the
   key finishes the sale without charging again. Meanwhile read the new stock levels for
   the receipt and close the cart; then store the answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from checkout import metrics
from checkout.cart import (
    Cart,
    CartNotFound,
    CartStore,
    PricedCart,
    add_item,
    close_cart,
    lookup_product,
    new_cart,
    price_cart,
    ready_for_checkout,
    remove_item,
)
from checkout.catalog import Catalog
from checkout.domain import CITY_BY_BRANCH, Branch
from checkout.errors import DependencyUnavailable
from checkout.events import EventPublisher, PublishError, SaleEvent, SaleLine, build_event
from checkout.idempotency import (
    IdempotencyConflict,
    IdempotencyRecord,
    IdempotencyStatus,
    IdempotencyStore,
    check_reuse,
    invoice_id_for,
    request_hash,
    validate_key,
)
from checkout.inventory import StockLedger, StockLevel, movements_for_sale
from checkout.models import (
    CartLineOut,
    CartOut,
    CheckoutRequest,
    ErrorOut,
    ReceiptLineOut,
    ReceiptOut,
)
from checkout.payments import (
    ChargeConflict,
    ChargeOutcome,
    ChargeRequest,
    ChargeResult,
    PaymentGateway,
    PaymentTimeout,
)

log = logging.getLogger(__name__)


class PaymentTimedOut(Exception):
    pass


class SaleNotRecorded(Exception):
    pass


@dataclass(frozen=True, slots=True)
class CheckoutOutcome:
    status: int
    body: dict[str, Any]
    replayed: bool = False


@dataclass(slots=True)
class CheckoutService:
    catalog: Catalog
    carts: CartStore
    idempotency: IdempotencyStore
    stock: StockLedger
    publisher: EventPublisher
    gateway: PaymentGateway
    region: str
    payment_timeout_s: float
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    async def _cart(self, cart_id: str) -> Cart:
        return _existing(cart_id, await self.carts.get(cart_id))

    def _view(self, cart: Cart) -> CartOut:
        priced = price_cart(cart, self.catalog)
        return CartOut(
            cart_id=cart.cart_id,
            branch=cart.branch,
            city=CITY_BY_BRANCH[cart.branch],
            status=cart.status,
            invoice_id=cart.invoice_id,
            created_at=cart.created_at,
            lines=[
                CartLineOut(
                    product_id=line.product.product_id,
                    product_line=line.product.product_line,
                    unit_price=line.price.unit_price,
                    quantity=line.price.quantity,
                    cogs=line.price.cogs,
                    tax=line.price.tax,
                    total=line.price.total,
                )
                for line in priced.lines
            ],
            cogs=priced.totals.cogs,
            tax=priced.totals.tax,
            total=priced.totals.total,
            amount_due=priced.totals.amount_due,
        )

    async def create_cart(self, branch: Branch) -> CartOut:
        cart = new_cart(branch, self.clock())
        await self.carts.save(cart)
        return self._view(cart)

    async def view_cart(self, cart_id: str) -> CartOut:
        return self._view(await self._cart(cart_id))

    async def add_item(self, cart_id: str, product_id: str, quantity: int) -> CartOut:
        cart = add_item(await self._cart(cart_id), self.catalog, product_id, quantity)
        await self.carts.save(cart)
        return self._view(cart)

    async def remove_item(self, cart_id: str, product_id: str) -> CartOut:
        cart = remove_item(await self._cart(cart_id), product_id)
        await self.carts.save(cart)
        return self._view(cart)

    async def stock_level(self, branch: Branch, product_id: str) -> StockLevel:
        lookup_product(self.catalog, product_id)
        return await self.stock.level(branch, product_id)

    async def checkout(
        self, cart_id: str, key: str | None, request: CheckoutRequest
    ) -> CheckoutOutcome:
        key = validate_key(key)
        fingerprint = request_hash(cart_id, request.model_dump(mode="json"))
        # Both reads at once: a checkout is a chain of round trips, and this pair is independent.
        record, cart_or_none = await asyncio.gather(
            self.idempotency.get(key), self.carts.get(cart_id)
        )
        try:
            finished = check_reuse(record, fingerprint)
        except IdempotencyConflict:
            metrics.CHECKOUTS.labels("conflict").inc()
            raise
        if finished is not None and finished.response_body is not None:
            metrics.CHECKOUTS.labels("replayed").inc()
            return CheckoutOutcome(
                finished.response_status or 200, _loads(finished.response_body), replayed=True
            )

        invoice_id = invoice_id_for(key)
        cart = _existing(cart_id, cart_or_none)
        if cart.invoice_id != invoice_id:
            # A resumed attempt of this key may find its own cart already closed.
            ready_for_checkout(cart)
        priced = price_cart(cart, self.catalog)
        pending = IdempotencyRecord(
            key, fingerprint, invoice_id, IdempotencyStatus.PENDING, self.clock()
        )
        await self.idempotency.put(pending)

        charge = await self._charge(
            ChargeRequest(key, priced.totals.amount_due, request.payment, invoice_id)
        )
        if charge.outcome is ChargeOutcome.DECLINED:
            return await self._declined(pending, charge)

        event = self._sale_event(invoice_id, priced, request, charge)
        await self._move_stock(event)
        # Close the cart before storing the answer: if closing fails the client retries
        # the key and ends here again, instead of a second key selling the cart twice.
        levels, _, _ = await asyncio.gather(
            self._stock_levels(event),
            self._publish(event),
            self.carts.save(close_cart(cart, invoice_id)),
        )
        body = _receipt(priced, event, charge, levels).model_dump(mode="json")
        await self._finish(pending, IdempotencyStatus.COMPLETED, 201, body)
        metrics.CHECKOUTS.labels("completed").inc()
        return CheckoutOutcome(201, body)

    async def _charge(self, request: ChargeRequest) -> ChargeResult:
        method = request.method.value
        try:
            result = await asyncio.wait_for(
                self.gateway.charge(request), timeout=self.payment_timeout_s
            )
        except (TimeoutError, PaymentTimeout) as error:
            metrics.PAYMENTS.labels(method, "timeout").inc()
            metrics.CHECKOUTS.labels("payment_timeout").inc()
            # The gateway may have charged before going silent: cancel it, so that a
            # timed-out checkout has taken no money, sold nothing and moved no stock.
            await self.gateway.void(request.key)
            raise PaymentTimedOut(
                f"the payment gateway did not answer within {self.payment_timeout_s}s; "
                "nothing was charged or sold; retry with the same Idempotency-Key"
            ) from error
        except ChargeConflict as error:
            metrics.PAYMENTS.labels(method, "conflict").inc()
            metrics.CHECKOUTS.labels("conflict").inc()
            raise IdempotencyConflict(
                f"Idempotency-Key {request.key!r} is already paying a different amount or "
                "method; use a new key for a new request"
            ) from error
        metrics.PAYMENTS.labels(method, result.outcome.value).inc()
        return result

    async def _declined(self, pending: IdempotencyRecord, charge: ChargeResult) -> CheckoutOutcome:
        body = ErrorOut(
            detail=f"payment declined ({charge.reason}); nothing was sold. Pay another way "
            "with a new Idempotency-Key.",
        ).model_dump(mode="json")
        await self._finish(pending, IdempotencyStatus.DECLINED, 402, body)
        metrics.CHECKOUTS.labels("declined").inc()
        return CheckoutOutcome(402, body)

    def _sale_event(
        self,
        invoice_id: str,
        priced: PricedCart,
        request: CheckoutRequest,
        charge: ChargeResult,
    ) -> SaleEvent:
        return build_event(
            invoice_id=invoice_id,
            source="api",
            region=self.region,
            branch=priced.cart.branch,
            sold_at=charge.decided_at,
            payment=request.payment,
            customer_type=request.customer_type,
            gender=request.gender,
            rating=request.rating,
            lines=tuple(
                SaleLine.priced(line.product.product_id, line.product.product_line, line.price)
                for line in priced.lines
            ),
            stock_moved=True,
        )

    async def _publish(self, event: SaleEvent) -> None:
        started = time.perf_counter()
        try:
            await self.publisher.publish(event)
        except PublishError as error:
            raise _retry_with_key(
                "publish_failed", "the sale could not be confirmed by Kafka", error
            ) from error
        metrics.KAFKA_PUBLISH_LATENCY.observe(time.perf_counter() - started)

    async def _move_stock(self, event: SaleEvent) -> None:
        try:
            await self.stock.record(movements_for_sale(event))
        except DependencyUnavailable as error:
            raise _retry_with_key(
                "stock_failed", "the stock movement could not be stored", error
            ) from error

    async def _stock_levels(self, event: SaleEvent) -> dict[str, StockLevel]:
        levels: dict[str, StockLevel] = {}
        try:
            products = [line.product_id for line in event.lines]
            found = await asyncio.gather(*(self.stock.level(event.branch, p) for p in products))
            levels = dict(zip(products, found, strict=True))
        except DependencyUnavailable as error:
            # The stock moved; only the receipt goes without the new levels.
            log.warning("stock levels for invoice %s not read: %s", event.invoice_id, error)
        for level in levels.values():
            if level.negative:
                metrics.NEGATIVE_STOCK.labels(level.branch.value).inc()
                log.warning(
                    "stock of %s at branch %s is negative (%d) after invoice %s",
                    level.product_id,
                    level.branch,
                    level.level,
                    event.invoice_id,
                )
        return levels

    async def _finish(
        self,
        pending: IdempotencyRecord,
        status: IdempotencyStatus,
        http_status: int,
        body: dict[str, Any],
    ) -> None:
        record = IdempotencyRecord(
            pending.key,
            pending.request_hash,
            pending.invoice_id,
            status,
            pending.created_at,
            http_status,
            _dumps(body),
        )
        try:
            await self.idempotency.put(record)
        except DependencyUnavailable as error:
            # The key stays pending; a retry redoes the idempotent steps and gets the same
            # answer, so losing this write costs a retry, not correctness.
            log.warning("could not store the answer for key %s: %s", pending.key, error)


def _retry_with_key(outcome: str, what: str, error: Exception) -> SaleNotRecorded:
    """A step after the approved payment failed: the client finishes it by retrying its key."""
    metrics.CHECKOUTS.labels(outcome).inc()
    return SaleNotRecorded(
        f"{what} ({error}); the payment is held, not charged twice: retry with the same "
        "Idempotency-Key to finish the checkout"
    )


def _existing(cart_id: str, cart: Cart | None) -> Cart:
    if cart is None:
        raise CartNotFound(f"cart {cart_id} does not exist (or expired); create a new cart")
    return cart


def _receipt(
    priced: PricedCart, event: SaleEvent, charge: ChargeResult, levels: dict[str, StockLevel]
) -> ReceiptOut:
    def line_out(line: SaleLine) -> ReceiptLineOut:
        level = levels.get(line.product_id)
        return ReceiptLineOut(
            **line.model_dump(),
            stock_level=None if level is None else level.level,
            stock_negative=level is not None and level.negative,
        )

    return ReceiptOut(
        invoice_id=event.invoice_id,
        cart_id=priced.cart.cart_id,
        branch=event.branch,
        city=event.city,
        sold_at=event.sold_at,
        payment=event.payment,
        charge_id=charge.charge_id,
        customer_type=event.customer_type,
        gender=event.gender,
        rating=event.rating,
        lines=[line_out(line) for line in event.lines],
        cogs=priced.totals.cogs,
        tax=priced.totals.tax,
        total=priced.totals.total,
        gross_income=priced.totals.gross_income,
        gross_margin_pct=priced.totals.gross_margin_pct,
        amount_due=priced.totals.amount_due,
    )


def _dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


def _loads(text: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(text)
    return body
