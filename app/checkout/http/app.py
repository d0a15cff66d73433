"""The checkout HTTP API (FastAPI); OpenAPI spec at /openapi.json, docs at /docs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from checkout.http import errors
from checkout.http.deps import AppDependencies
from checkout.http.middleware import BodyLimit, HttpMetrics
from checkout.http.routes import carts, catalog, checkout, ops, stock


def create_app(deps: AppDependencies) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        jobs = [asyncio.create_task(job()) for job in deps.background]
        yield
        for job in jobs:
            job.cancel()
        # uvicorn has drained in-flight requests by now; close producers last so the
        # buffered events of those requests are flushed.
        app.state.shutting_down = True
        for close in deps.on_shutdown:
            closing = close()
            if closing is not None:
                await closing

    app = FastAPI(
        title="Supermarket checkout API",
        version="2.0.0",
        description="Carts, checkout with payment and inventory, for branches A (Yangon), "
        "B (Mandalay) and C (Naypyitaw). Checkout and restock require an Idempotency-Key "
        "header.",
        lifespan=lifespan,
    )
    app.state.deps = deps
    app.state.shutting_down = False
    errors.install(app)
    for module in (ops, catalog, carts, checkout, stock):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, max_bytes=deps.max_body_bytes)
    app.add_middleware(HttpMetrics)
    return app
