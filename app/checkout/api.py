"""The checkout HTTP API (FastAPI on uvicorn); OpenAPI spec at /openapi.json, docs at /docs."""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, Header, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from checkout import metrics
from checkout.cart import (
    CartClosed,
    CartLimitExceeded,
    CartNotFound,
    EmptyCart,
    ItemNotInCart,
    UnknownProduct,
)
from checkout.catalog import default_catalog
from checkout.config import Settings, get_settings
from checkout.domain import CITY_BY_BRANCH, Branch, ProductLine
from checkout.errors import DependencyUnavailable
from checkout.idempotency import IdempotencyConflict, InvalidIdempotencyKey
from checkout.models import (
    AddItemRequest,
    CartOut,
    CheckoutRequest,
    CreateCartRequest,
    ErrorOut,
    ProductOut,
    ReceiptOut,
    StockOut,
)
from checkout.payments import SandboxGateway
from checkout.producer import KafkaEventPublisher
from checkout.service import CheckoutService, PaymentTimedOut, SaleNotRecorded
from checkout.storage import (
    Cassandra,
    CassandraCartStore,
    CassandraChargeLedger,
    CassandraIdempotencyStore,
    CassandraStockLedger,
)

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], None]

_CART_ID = Annotated[uuid.UUID, Path(description="The cart_id returned by POST /carts.")]
_STATUS_BY_ERROR: dict[type[Exception], int] = {
    CartNotFound: 404,
    ItemNotInCart: 404,
    CartClosed: 409,
    UnknownProduct: 422,
    CartLimitExceeded: 422,
    EmptyCart: 422,
    InvalidIdempotencyKey: 400,
    IdempotencyConflict: 422,
    PaymentTimedOut: 504,
    SaleNotRecorded: 503,
    DependencyUnavailable: 503,
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 402, 404, 409, 413, 422, 503, 504)
}


@dataclass
class AppDependencies:
    service: CheckoutService
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)
    on_shutdown: list[Callable[[], None]] = field(default_factory=list)
    max_body_bytes: int = 64 * 1024


class BodyLimit:
    """Refuse request bodies over the limit with 413 before any handler parses them.

    The body is read up front (it is small by construction), so a client that lies in
    Content-Length or streams a chunked body is held to the same limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self._app = app
        self._max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_bytes:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self._app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse(
            ErrorOut(
                detail=f"request body larger than {self._max_bytes} bytes; "
                "checkout requests are small JSON documents"
            ).model_dump(),
            status_code=413,
        )
        await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


class HttpMetrics:
    """Count and time every request by route template (not raw path, to bound labels)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, capture)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", "unmatched")
            method = scope["method"]
            metrics.HTTP_REQUESTS.labels(endpoint, method, str(status)).inc()
            metrics.HTTP_LATENCY.labels(endpoint, method).observe(time.perf_counter() - started)


def _error(status: int, detail: str, errors: Sequence[str] = ()) -> JSONResponse:
    headers = {"Retry-After": "1"} if status == 503 else None
    body = ErrorOut(detail=detail, errors=list(errors)).model_dump()
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_message(error: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error["loc"] if part != "body")
    return f"{location or 'body'}: {error['msg']}"


def create_app(deps: AppDependencies) -> FastAPI:
    service = deps.service
    shutting_down = False

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nonlocal shutting_down
        yield
        # uvicorn has drained in-flight requests by now; close producers last so the
        # buffered events of those requests are flushed.
        shutting_down = True
        for close in deps.on_shutdown:
            close()

    app = FastAPI(
        title="Supermarket checkout API",
        version="1.0.0",
        description="Carts, checkout with payment and inventory, for branches A (Yangon), "
        "B (Mandalay) and C (Naypyitaw). Checkout requires an Idempotency-Key header.",
        lifespan=lifespan,
    )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e["type"] == "json_invalid" for e in errors):
            return _error(400, "request body is not valid JSON", [str(e["msg"]) for e in errors])
        messages = [_validation_message(e) for e in errors]
        return _error(422, "invalid request: " + "; ".join(messages), messages)

    def handle(kind: type[Exception]) -> None:
        async def handler(_: Request, exc: Exception) -> JSONResponse:
            return _error(_STATUS_BY_ERROR[kind], str(exc))

        app.add_exception_handler(kind, handler)

    for kind in _STATUS_BY_ERROR:
        handle(kind)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses={503: {"model": ErrorOut}})
    async def readyz() -> JSONResponse:
        """Readiness: Cassandra's local DC and Kafka are reachable, and not shutting down."""
        problems = ["shutting down"] if shutting_down else []
        for name, check in deps.readiness.items():
            try:
                check()
            except DependencyUnavailable as error:
                problems.append(f"{name}: {error}")
        if problems:
            return _error(503, "not ready", problems)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/branches", tags=["catalog"])
    async def branches() -> list[dict[str, str]]:
        return [{"branch": b.value, "city": CITY_BY_BRANCH[b]} for b in Branch]

    @app.get("/products", tags=["catalog"])
    async def products(product_line: ProductLine | None = None) -> list[ProductOut]:
        return [
            ProductOut(
                product_id=p.product_id, product_line=p.product_line, unit_price=p.unit_price
            )
            for p in service.catalog
            if product_line is None or p.product_line is product_line
        ]

    @app.post("/carts", status_code=201, tags=["cart"], responses=_ERRORS)
    async def create_cart(body: CreateCartRequest) -> CartOut:
        return await service.create_cart(body.branch)

    @app.get("/carts/{cart_id}", tags=["cart"], responses=_ERRORS)
    async def view_cart(cart_id: _CART_ID) -> CartOut:
        return await service.view_cart(str(cart_id))

    @app.post("/carts/{cart_id}/items", tags=["cart"], responses=_ERRORS)
    async def add_item(cart_id: _CART_ID, body: AddItemRequest) -> CartOut:
        return await service.add_item(str(cart_id), body.product_id, body.quantity)

    @app.delete("/carts/{cart_id}/items/{product_id}", tags=["cart"], responses=_ERRORS)
    async def remove_item(cart_id: _CART_ID, product_id: str) -> CartOut:
        return await service.remove_item(str(cart_id), product_id)

    @app.post(
        "/carts/{cart_id}/checkout",
        status_code=201,
        tags=["checkout"],
        response_model=ReceiptOut,
        responses=_ERRORS,
    )
    async def checkout(
        cart_id: _CART_ID,
        body: CheckoutRequest,
        idempotency_key: Annotated[
            str | None,
            Header(description="Unique per checkout; resend it unchanged when retrying."),
        ] = None,
    ) -> JSONResponse:
        """Pay for the cart and record the sale. Answers once Kafka acknowledged it.

        A retry with the same Idempotency-Key and body returns the same invoice and charges
        once (header Idempotent-Replayed: true); the same key with another body is refused.
        """
        outcome = await service.checkout(str(cart_id), idempotency_key, body)
        headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
        return JSONResponse(outcome.body, status_code=outcome.status, headers=headers)

    @app.get("/stock/{branch}/{product_id}", tags=["inventory"], responses=_ERRORS)
    async def stock(branch: Branch, product_id: str) -> StockOut:
        level = await service.stock_level(branch, product_id)
        return StockOut(
            branch=level.branch,
            product_id=level.product_id,
            level=level.level,
            negative=level.negative,
        )

    app.add_middleware(BodyLimit, max_bytes=deps.max_body_bytes)
    app.add_middleware(HttpMetrics)
    return app


def build_dependencies(settings: Settings) -> AppDependencies:
    """Connect the real Cassandra, Kafka producer and sandbox gateway."""
    db = Cassandra(settings)
    try:
        publisher = KafkaEventPublisher(settings, client_id=f"checkout-api-{settings.region}")
    except DependencyUnavailable:
        db.close()
        raise
    gateway = SandboxGateway(
        seed=settings.payment_seed,
        median_latency_s=settings.payment_latency_ms / 1000,
        decline_rate=settings.payment_decline_rate,
        timeout_rate=settings.payment_timeout_rate,
        hang_s=settings.payment_timeout_s * 3,
        ledger=CassandraChargeLedger(db),
    )
    service = CheckoutService(
        catalog=default_catalog(),
        carts=CassandraCartStore(db),
        idempotency=CassandraIdempotencyStore(db),
        stock=CassandraStockLedger(db, settings.initial_stock),
        publisher=publisher,
        gateway=gateway,
        region=settings.region,
        payment_timeout_s=settings.payment_timeout_s,
    )
    return AppDependencies(
        service=service,
        readiness={"cassandra": db.ready, "kafka": publisher.ready},
        on_shutdown=[publisher.close, db.close],
        max_body_bytes=settings.api_max_body_bytes,
    )


def main() -> int:
    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    metrics.SERVICE_INFO.info({"service": "api", "region": settings.region})
    try:
        deps = build_dependencies(settings)
    except DependencyUnavailable as error:
        print(f"checkout-api: {error}", file=sys.stderr)
        return 1
    uvicorn.run(
        create_app(deps),
        host=settings.api_host,
        port=settings.api_port,
        # On SIGTERM uvicorn stops accepting, waits this long for in-flight checkouts,
        # then runs the shutdown hooks that flush Kafka and close Cassandra.
        timeout_graceful_shutdown=settings.api_shutdown_grace_s,
        access_log=False,
        log_level=settings.log_level.lower(),
    )
    return 0
