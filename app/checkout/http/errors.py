"""Errors to HTTP answers: one table decides each status, one body shape (ErrorOut)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from checkout.cart import (
    CartClosed,
    CartLimitExceeded,
    CartNotFound,
    EmptyCart,
    ItemNotInCart,
    UnknownProduct,
)
from checkout.errors import DependencyUnavailable
from checkout.idempotency import IdempotencyConflict, InvalidIdempotencyKey
from checkout.inventory import RestockRefused
from checkout.models import ErrorOut
from checkout.service import PaymentTimedOut, SaleNotRecorded

STATUS_BY_ERROR: dict[type[Exception], int] = {
    CartNotFound: 404,
    ItemNotInCart: 404,
    CartClosed: 409,
    # The spec lists the catalog's ids: any other is an invalid request.
    UnknownProduct: 422,
    # The request is well formed; the cart's state refuses it.
    CartLimitExceeded: 409,
    EmptyCart: 409,
    RestockRefused: 422,
    InvalidIdempotencyKey: 400,
    # The key is taken by another request: a conflict with the state it left.
    IdempotencyConflict: 409,
    PaymentTimedOut: 504,
    SaleNotRecorded: 503,
    DependencyUnavailable: 503,
}
_KEY_HEADER = ("header", "idempotency-key")


def error_response(status: int, detail: str, errors: Sequence[str] = ()) -> JSONResponse:
    headers = {"Retry-After": "1"} if status == 503 else None
    body = ErrorOut(detail=detail, errors=list(errors)).model_dump()
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_message(error: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error["loc"] if part != "body")
    return f"{location or 'body'}: {error['msg']}"


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e["type"] == "json_invalid" for e in errors):
        return error_response(
            400, "request body is not valid JSON", [str(e["msg"]) for e in errors]
        )
    if any(tuple(e["loc"]) == _KEY_HEADER for e in errors):
        return error_response(
            400,
            "the Idempotency-Key header is required: 1 to 255 printable ASCII characters, a "
            "fresh one per operation, reused only when retrying it",
        )
    messages = [_validation_message(e) for e in errors]
    return error_response(422, "invalid request: " + "; ".join(messages), messages)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid_request)

    def handle(kind: type[Exception]) -> None:
        async def handler(_: Request, exc: Exception) -> JSONResponse:
            return error_response(STATUS_BY_ERROR[kind], str(exc))

        app.add_exception_handler(kind, handler)

    for kind in STATUS_BY_ERROR:
        handle(kind)
