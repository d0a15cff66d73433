"""checkout-gateway: the lab's sandbox acquirer as its own HTTP service.

    POST /v1/charges              charge once per idempotency key (replays answer the first)
    POST /v1/charges/{key}/void   cancel what the key charged; a later charge with it is new
    GET  /v1/charges/{key}        the stored charge, or 404
    GET  /v1/charges?approved_before=T[&after=T0&after_key=K]&limit=N
                                  approved charges before T, oldest first, by pages
    GET  /healthz                 200 while the ledger answers
    GET  /metrics                 Prometheus metrics

Settings come from GATEWAY_* environment variables (GatewaySettings).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Annotated, Literal

import uvicorn
from fastapi import FastAPI, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from checkout.domain import PaymentMethod
from checkout.gateway.ledger import SqliteChargeLedger, StoredCharge, iso_millis
from checkout.gateway.simulation import SandboxGateway, Sleep
from checkout.payments import ChargeConflict, ChargeRequest, PaymentTimeout

log = logging.getLogger("checkout.gateway")


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    host: str = "0.0.0.0"
    port: int = Field(8090, ge=1, le=65535)
    ledger_path: str = "/var/lib/checkout-gateway/ledger.db"
    seed: int = 20190101
    latency_ms: float = Field(20.0, ge=0, description="Median card/e-wallet latency.")
    decline_rate: float = Field(0.03, ge=0, le=1)
    timeout_rate: float = Field(0.002, ge=0, le=1)
    hang_s: float = Field(6.0, ge=0, description="How long a hanging charge hangs.")
    retention_h: float = Field(24.0, gt=0, description="Idempotency window of the ledger.")
    purge_interval_s: float = Field(600.0, gt=0)
    log_level: str = "INFO"


Key = Annotated[str, Field(min_length=1, max_length=255)]


class ChargeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: Key
    fingerprint: str = Field(min_length=1, max_length=128)
    amount: Decimal = Field(gt=0, max_digits=14, decimal_places=2, allow_inf_nan=False)
    method: PaymentMethod
    reference: str = Field(max_length=255)


class ChargeOut(BaseModel):
    charge_id: str
    outcome: Literal["approved", "declined"]
    decided_at: str = Field(description="ISO-8601 with its UTC offset, to the millisecond.")
    reason: str | None
    replayed: bool


class StoredChargeOut(BaseModel):
    key: str
    fingerprint: str
    amount: str
    method: PaymentMethod
    reference: str
    charge_id: str
    outcome: Literal["approved", "declined"]
    decided_at: str
    reason: str | None


class ChargeList(BaseModel):
    charges: list[StoredChargeOut]


class VoidOut(BaseModel):
    key: str
    voided: bool


class Detail(BaseModel):
    detail: str


class GatewayMetrics:
    """One registry per app, so two apps in one test process do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.charges = Counter(
            "checkout_gateway_charges_total",
            "Charges decided (replays excluded), by method and outcome.",
            ["method", "outcome"],
            registry=self.registry,
        )
        self.replays = Counter(
            "checkout_gateway_replays_total",
            "Charge requests answered with the key's stored charge.",
            registry=self.registry,
        )
        self.conflicts = Counter(
            "checkout_gateway_conflicts_total",
            "Charge requests refused: the key was used for another charge.",
            registry=self.registry,
        )
        self.hangs = Counter(
            "checkout_gateway_hangs_total",
            "Charge requests the simulation let hang (the client times out).",
            registry=self.registry,
        )
        self.voids = Counter(
            "checkout_gateway_voids_total", "Void requests.", registry=self.registry
        )
        self.purged = Counter(
            "checkout_gateway_purged_total",
            "Charges forgotten after the idempotency window.",
            registry=self.registry,
        )
        self.latency = Histogram(
            "checkout_gateway_charge_duration_seconds",
            "Time to answer POST /v1/charges.",
            buckets=(0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24),
            registry=self.registry,
        )


def _charge_out(result: StoredCharge) -> StoredChargeOut:
    request, charge = result.request, result.result
    return StoredChargeOut(
        key=request.key,
        fingerprint=request.fingerprint,
        amount=str(request.amount),
        method=request.method,
        reference=request.reference,
        charge_id=charge.charge_id,
        outcome=charge.outcome.value,
        decided_at=iso_millis(charge.decided_at),
        reason=charge.reason,
    )


def _lifespan(
    ledger: SqliteChargeLedger, metrics: GatewayMetrics, purge_interval_s: float
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """Purge the ledger now and every purge_interval_s; close it at shutdown."""

    async def purge_forever() -> None:
        while True:
            try:
                metrics.purged.inc(await ledger.purge())
            except Exception:
                log.exception("purging the ledger failed; trying again next round")
            await asyncio.sleep(purge_interval_s)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        purger = asyncio.create_task(purge_forever())
        try:
            yield
        finally:
            purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purger
            ledger.close()

    return lifespan


def create_app(settings: GatewaySettings, *, sleep: Sleep = asyncio.sleep) -> FastAPI:
    """The gateway over the SQLite ledger at settings.ledger_path (opened here)."""
    ledger = SqliteChargeLedger(settings.ledger_path, retention_h=settings.retention_h)
    gateway = SandboxGateway(
        seed=settings.seed,
        median_latency_s=settings.latency_ms / 1000,
        decline_rate=settings.decline_rate,
        timeout_rate=settings.timeout_rate,
        hang_s=settings.hang_s,
        ledger=ledger,
        sleep=sleep,
    )
    metrics = GatewayMetrics()

    app = FastAPI(
        title="Sandbox payment gateway",
        description="The lab's acquirer: idempotent charges by key, kept in its own ledger.",
        version="1",
        lifespan=_lifespan(ledger, metrics, settings.purge_interval_s),
    )
    app.state.gateway = gateway
    app.state.ledger = ledger
    app.state.metrics = metrics

    @app.post(
        "/v1/charges",
        responses={409: {"model": Detail}, 504: {"model": Detail}},
    )
    async def charge(body: ChargeIn) -> ChargeOut:
        request = ChargeRequest(
            body.key, body.amount, body.method, body.reference, body.fingerprint
        )
        started = time.perf_counter()
        try:
            result = await gateway.charge(request)
        except ChargeConflict as error:
            metrics.conflicts.inc()
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
        except PaymentTimeout as error:
            metrics.hangs.inc()
            raise HTTPException(status.HTTP_504_GATEWAY_TIMEOUT, str(error)) from error
        finally:
            metrics.latency.observe(time.perf_counter() - started)
        if result.replayed:
            metrics.replays.inc()
        else:
            metrics.charges.labels(body.method.value, result.outcome.value).inc()
        return ChargeOut(
            charge_id=result.charge_id,
            outcome=result.outcome.value,
            decided_at=iso_millis(result.decided_at),
            reason=result.reason,
            replayed=result.replayed,
        )

    @app.post("/v1/charges/{key:path}/void")
    async def void(key: Key) -> VoidOut:
        metrics.voids.inc()
        await gateway.void(key)
        return VoidOut(key=key, voided=True)

    @app.get("/v1/charges")
    async def approved(
        approved_before: Annotated[
            AwareDatetime, Query(description="Approved charges decided before this instant.")
        ],
        after: Annotated[
            AwareDatetime | None, Query(description="The next page: decided at or after this.")
        ] = None,
        after_key: Annotated[str, Query(max_length=255, description="...and past this key.")] = "",
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> ChargeList:
        """The acquirer's report the reconciler reads: approved charges, oldest first."""
        cursor = (after, after_key) if after else None
        charges = await ledger.approved_before(approved_before, limit, cursor)
        return ChargeList(charges=[_charge_out(c) for c in charges])

    @app.get("/v1/charges/{key:path}", responses={404: {"model": Detail}})
    async def lookup(key: Key) -> StoredChargeOut:
        stored = await gateway.lookup(key)
        if stored is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no charge with key {key!r}")
        return _charge_out(stored)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        try:
            await asyncio.to_thread(ledger.ping)
        except Exception as error:  # noqa: BLE001 - any failure of the ledger is unhealthy
            return JSONResponse({"status": "down", "detail": str(error)}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics")
    async def prometheus_metrics(_request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def main() -> int:
    settings = GatewaySettings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        # A hanging charge is abandoned on SIGTERM after this; what it stored stays stored.
        timeout_graceful_shutdown=5,
        access_log=False,
        log_level=settings.log_level.lower(),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
