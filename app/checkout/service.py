"""The checkout use cases, over small interfaces for storage, Kafka and the gateway.

Checkout order, and why:
1. Read the cart from Cassandra (one request). A cart checked out under this key is
   answered from its record (a different request under the key is refused); under
   another key it is closed.
2. Charge with the key, the request hash as the fingerprint. The gateway decides each key
   once: a retry, on any API node, gets the first charge and approval time back, and the
   key reused for another request is refused there. Declined: nothing is sold (the cart
   stays open, the shopper pays another way with a new key). Timed out: the charge is
   voided and nothing is sold; the client may retry with the key.
3. At once, concurrently: move the stock (one request; movements keyed by the invoice,
   so a retry rewrites the same rows) and publish the sale (acks=all); from the ack on
   the sale is durable. The sale time is the gateway's approval time, which every retry
   gets back, so a retried publish is byte-for-byte the same event on the same rows.
4. Then close the cart with the answer (one request). Only now: a retry that finds the
   record gets the receipt, so the record must not exist before the sale does. If a step
   of 3 or 4 fails the charge stands and a retry with the key finishes the sale without
   charging again.
So a checkout is one Cassandra round trip before the gateway and two after it.
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

from prometheus_client.context_managers import Timer

from checkout import metrics
from checkout.cart import (
    Cart,
    CartNotFound,
    CartStore,
    CheckoutRecord,
    PricedCart,
    add_item,
    close_cart,
    lookup_product,
    new_cart,
    price_cart,
    remove_item,
)
from checkout.catalog import Catalog
from checkout.domain import CITY_BY_BRANCH, Branch, CheckoutStage
from checkout.errors import DependencyUnavailable
from checkout.events import EventPublisher, PublishError, SaleEvent, SaleLine, build_event
from checkout.idempotency import (
    IdempotencyConflict,
    answered,
    invoice_id_for,
    request_hash,
    validate_key,
)
from checkout.inventory import StockLedger, StockLevel, movements_for_sale, restock_movement
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
        await self.carts.create(cart)
        return self._view(cart)

    async def view_cart(self, cart_id: str) -> CartOut:
        return self._view(await self._cart(cart_id))

    async def add_item(self, cart_id: str, product_id: str, quantity: int) -> CartOut:
        cart = add_item(await self._cart(cart_id), self.catalog, product_id, quantity)
        await self.carts.add(cart, product_id, quantity)
        return self._view(cart)

    async def remove_item(self, cart_id: str, product_id: str) -> CartOut:
        cart = remove_item(await self._cart(cart_id), product_id)
        await self.carts.remove(cart, product_id)
        return self._view(cart)

    async def stock_level(self, branch: Branch, product_id: str) -> StockLevel:
        lookup_product(self.catalog, product_id)
        level = await self.stock.level(branch, product_id)
        if level.negative:
            metrics.NEGATIVE_STOCK.labels(branch.value).inc()
        return level

    async def restock(
        self, branch: Branch, product_id: str, key: str | None, quantity: int
    ) -> StockLevel:
        """Add a delivery to the shelf once per key: a retry rewrites the same movement."""
        lookup_product(self.catalog, product_id)
        movement = restock_movement(branch, product_id, validate_key(key), quantity, self.clock())
        await self.stock.record([movement])
        return await self.stock.level(branch, product_id)

    async def checkout(
        self, cart_id: str, key: str | None, request: CheckoutRequest
    ) -> CheckoutOutcome:
        key = validate_key(key)
        fingerprint = request_hash(cart_id, request.model_dump(mode="json"))
        with _stage(CheckoutStage.CART):
            cart = _existing(cart_id, await self.carts.get(cart_id, fresh=True))
        try:
            finished = answered(cart, key, fingerprint)
        except IdempotencyConflict:
            metrics.CHECKOUTS.labels("conflict").inc()
            raise
        if finished is not None:
            metrics.CHECKOUTS.labels("replayed").inc()
            return CheckoutOutcome(
                finished.response_status, _loads(finished.response_body), replayed=True
            )

        invoice_id = invoice_id_for(key)
        priced = price_cart(cart, self.catalog)
        with _stage(CheckoutStage.CHARGE):
            charge = await self._charge(
                ChargeRequest(
                    key=key,
                    amount=priced.totals.amount_due,
                    method=request.payment,
                    reference=invoice_id,
                    fingerprint=fingerprint,
                )
            )
        if charge.outcome is ChargeOutcome.DECLINED:
            return self._declined(charge)

        event = self._sale_event(invoice_id, priced, request, charge)
        with _stage(CheckoutStage.COMMIT):
            await asyncio.gather(self._move_stock(event), self._publish(event))
        body = _receipt(priced, event, charge).model_dump(mode="json")
        record = CheckoutRecord(key, fingerprint, 201, _dumps(body))
        with _stage(CheckoutStage.CLOSE):
            await self._close(close_cart(cart, invoice_id, record))
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
            try:
                await self.gateway.void(request.key)
            except PaymentTimeout as void_error:
                # The charge may stand; the retry the answer asks for gets it back from
                # the gateway and finishes the sale, so no charge is left without a sale.
                log.warning("could not void key %s: %s", request.key, void_error)
                raise PaymentTimedOut(
                    "the payment gateway is not answering; nothing was sold, and a charge it "
                    "may have made is settled by a retry with the same Idempotency-Key"
                ) from error
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

    def _declined(self, charge: ChargeResult) -> CheckoutOutcome:
        # Nothing is stored: a retry with the key gets the same decline from the gateway.
        body = ErrorOut(
            detail=f"payment declined ({charge.reason}); nothing was sold. Pay another way "
            "with a new Idempotency-Key.",
        ).model_dump(mode="json")
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

    async def _close(self, cart: Cart) -> None:
        try:
            await self.carts.close(cart)
        except DependencyUnavailable as error:
            raise _retry_with_key(
                "record_failed", "the checkout record could not be stored", error
            ) from error


def _stage(stage: CheckoutStage) -> Timer:
    """Times one sequential stage of a checkout (checkout_stage_duration_seconds)."""
    return metrics.CHECKOUT_STAGE_LATENCY.labels(stage.value).time()


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


def _receipt(priced: PricedCart, event: SaleEvent, charge: ChargeResult) -> ReceiptOut:
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
        lines=[ReceiptLineOut(**line.model_dump()) for line in event.lines],
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
