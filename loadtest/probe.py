"""After a fault: does every region's API sell again by itself? One cash checkout each.

The tills fail over to another region's API, so a run's figures stay good while one API
cannot sell at all: a region cut once left an API whose Kafka acks were never seen again,
and the run still recovered through the other two. `./lab chaos` asks each API for one
checkout once its load is over, and fails the scenario for an API that does not sell.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from typing import Any

SELL_WITHIN_S = 60.0  # the heal's own settling, generously: hints, leaders, reconnects
TRY_EVERY_S = 2.0


def _call(url: str, body: Any | None = None, headers: Mapping[str, str] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=15) as answer:
        return json.load(answer)


def sell(api: str, branch: str) -> str | None:
    """One cash checkout of one product through api; None when sold, else what went wrong."""
    try:
        product = _call(f"{api}/products")[0]["product_id"]
        cart = _call(f"{api}/carts", {"branch": branch})["cart_id"]
        _call(f"{api}/carts/{cart}/items", {"product_id": product, "quantity": 1})
        checkout = {"payment": "Cash", "customer_type": "Normal", "gender": "Female", "rating": 7.0}
        _call(f"{api}/carts/{cart}/checkout", checkout, {"Idempotency-Key": str(uuid.uuid4())})
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code} from {error.url}"
    except (OSError, KeyError, IndexError) as error:  # OSError: URLError and timeouts too
        return f"{type(error).__name__}: {error}"
    return None


def apis_not_selling(
    api_by_branch: Mapping[str, str],
    within_s: float = SELL_WITHIN_S,
    *,
    sell_one: Callable[[str, str], str | None] = sell,
    clock: Callable[[], float] = time.monotonic,
    pause: Callable[[float], None] = time.sleep,
) -> dict[str, str]:
    """The branches whose API sold nothing by itself within within_s, with the last error."""
    deadline = clock() + within_s
    waiting = dict(api_by_branch)
    errors: dict[str, str] = {}
    while True:
        for branch, api in list(waiting.items()):
            error = sell_one(api, branch)
            if error is None:
                del waiting[branch]
                errors.pop(branch, None)
            else:
                errors[branch] = error
        if not waiting or clock() >= deadline:
            return errors
        pause(TRY_EVERY_S)
