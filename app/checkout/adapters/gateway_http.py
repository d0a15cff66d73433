"""The checkout's client of the payment gateway service (checkout.gateway.service).

One httpx.AsyncClient per API process keeps a small pool of keep-alive connections to
the gateway, so a charge costs one round trip, not a TCP handshake plus one. Every
failure to get an answer is a PaymentTimeout: the caller cannot know whether the
gateway charged, so it voids the key (as it does after its own deadline).
"""

from __future__ import annotations

import logging
from datetime import datetime
from urllib.parse import quote

import httpx

from checkout.errors import DependencyUnavailable
from checkout.payments import (
    ApprovedCharge,
    ChargeConflict,
    ChargeOutcome,
    ChargeRequest,
    ChargeResult,
    PaymentTimeout,
)

log = logging.getLogger(__name__)

_CONFLICT = 409


class HttpPaymentGateway:
    """payments.PaymentGateway over HTTP: POST /v1/charges, POST /v1/charges/{key}/void."""

    def __init__(
        self,
        base_url: str,
        timeout_s: float,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 64,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
        )
        # Readiness from the last call's fate: /readyz must not itself call the gateway.
        self._reachable = True
        self._last_error = ""

    def _path(self, key: str, suffix: str = "") -> str:
        return f"/v1/charges/{quote(key, safe='')}{suffix}"

    async def _post(self, path: str, body: dict[str, str] | None = None) -> httpx.Response:
        try:
            response = await self._client.post(path, json=body)
        except httpx.TransportError as error:  # timeouts, refused or reset connections
            # A slow answer is a hang (the simulation's, or a busy gateway): the node stays
            # ready. No connection at all makes it unready until a call gets through.
            if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout):
                self._down(f"{type(error).__name__}: {error}")
            raise PaymentTimeout(
                f"payment gateway {self.base_url} gave no answer ({type(error).__name__})"
            ) from error
        if response.status_code >= httpx.codes.INTERNAL_SERVER_ERROR:
            # A hang (504) or a failing gateway: it may have charged, the caller voids.
            if response.status_code != httpx.codes.GATEWAY_TIMEOUT:
                self._down(f"HTTP {response.status_code}")
            raise PaymentTimeout(
                f"payment gateway {self.base_url} answered {response.status_code}: "
                f"{_detail(response)}"
            )
        self._reachable = True
        return response

    def _down(self, why: str) -> None:
        if self._reachable:
            log.warning("payment gateway %s unreachable: %s", self.base_url, why)
        self._reachable, self._last_error = False, why

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        response = await self._post(
            "/v1/charges",
            {
                "key": request.key,
                "fingerprint": request.fingerprint,
                "amount": str(request.amount),
                "method": request.method.value,
                "reference": request.reference,
            },
        )
        if response.status_code == _CONFLICT:
            raise ChargeConflict(_detail(response))
        if response.status_code != httpx.codes.OK:
            # 422 and friends: this client sent something the gateway refuses, a bug here.
            raise ValueError(
                f"payment gateway refused the charge ({response.status_code}): {_detail(response)}"
            )
        body = response.json()
        return ChargeResult(
            charge_id=body["charge_id"],
            outcome=ChargeOutcome(body["outcome"]),
            decided_at=datetime.fromisoformat(body["decided_at"]),
            reason=body.get("reason"),
            replayed=bool(body.get("replayed", False)),
        )

    async def void(self, key: str) -> None:
        response = await self._post(self._path(key, "/void"))
        response.raise_for_status()

    async def approved_before(
        self, before: datetime, limit: int, after: ApprovedCharge | None = None
    ) -> list[ApprovedCharge]:
        """The gateway's approved charges decided before `before`, oldest first, the page
        after the charge `after`."""
        params: dict[str, str | int] = {"approved_before": before.isoformat(), "limit": limit}
        if after is not None:
            params |= {"after": after.decided_at.isoformat(), "after_key": after.key}
        try:
            response = await self._client.get("/v1/charges", params=params)
        except httpx.TransportError as error:
            raise DependencyUnavailable(
                f"payment gateway {self.base_url} gave no answer ({type(error).__name__})"
            ) from error
        response.raise_for_status()
        return [
            ApprovedCharge(c["key"], c["reference"], datetime.fromisoformat(c["decided_at"]))
            for c in response.json()["charges"]
        ]

    def ready(self) -> None:
        """Raise DependencyUnavailable while the last call found the gateway unreachable."""
        if not self._reachable:
            raise DependencyUnavailable(
                f"payment gateway {self.base_url} unreachable ({self._last_error}); "
                "check checkout-gateway on its host"
            )

    async def aclose(self) -> None:
        await self._client.aclose()


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    return str(detail) if detail else response.text[:200]


__all__ = ["HttpPaymentGateway"]
