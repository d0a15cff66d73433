"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from checkout.http.deps import Deps, problems
from checkout.http.errors import error_response
from checkout.models import ErrorOut

router = APIRouter(tags=["ops"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"model": ErrorOut}})
async def readyz(request: Request, deps: Deps) -> JSONResponse:
    """Readiness: Cassandra's local DC, Kafka and the gateway are reachable, and the
    process is not shutting down."""
    found = problems(deps, request.app.state.shutting_down)
    if found:
        return error_response(503, "not ready", found)
    return JSONResponse({"status": "ready"})


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
