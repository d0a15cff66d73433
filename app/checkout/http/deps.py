"""What the routers depend on, as Annotated dependencies (built once by checkout.wiring)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Request

from checkout.errors import DependencyUnavailable
from checkout.idempotency import KEY_PATTERN
from checkout.models import PRODUCT_IDS, ErrorOut
from checkout.service import CheckoutService

ReadinessCheck = Callable[[], None]


@dataclass
class AppDependencies:
    service: CheckoutService
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)
    # Closers run after the last request, in order; a coroutine closer is awaited.
    on_shutdown: list[Callable[[], Coroutine[Any, Any, None] | None]] = field(default_factory=list)
    # Jobs that run beside the requests for the life of the process (the stock sweep).
    background: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    max_body_bytes: int = 64 * 1024


# async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a thread
# hop on every request that cost more CPU than the request's own handler.
async def _dependencies(request: Request) -> AppDependencies:
    deps: AppDependencies = request.app.state.deps
    return deps


async def _service(request: Request) -> CheckoutService:
    return (await _dependencies(request)).service


Deps = Annotated[AppDependencies, Depends(_dependencies)]
Service = Annotated[CheckoutService, Depends(_service)]
CartId = Annotated[uuid.UUID, Path(description="The cart_id returned by POST /carts.")]
# Validated by the catalog (an unknown id is a 422), listed in the spec.
ProductPath = Annotated[
    str, Path(description="A product_id of GET /products.", json_schema_extra={"enum": PRODUCT_IDS})
]
IdempotencyKey = Annotated[
    str,
    Header(
        description="Unique per operation (1 to 255 printable ASCII characters); resend it "
        "unchanged when retrying.",
        pattern=KEY_PATTERN,
    ),
]
# Every error answer has one shape; 422 included (FastAPI's default HTTPValidationError
# is not what this API sends).
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 402, 404, 409, 413, 422, 503, 504)
}
SHUTTING_DOWN = "shutting down"


def problems(deps: AppDependencies, shutting_down: bool) -> list[str]:
    found = [SHUTTING_DOWN] if shutting_down else []
    for name, check in deps.readiness.items():
        try:
            check()
        except DependencyUnavailable as error:
            found.append(f"{name}: {error}")
    return found
