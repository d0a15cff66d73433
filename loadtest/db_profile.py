"""What one checkout costs the database, read from the lab's Prometheus.

Cassandra counts the requests it coordinates by kind (Write, Read, CASWrite, CASRead,
RangeSlice, ...) and the API counts its checkouts; both are scraped by Prometheus. The
difference of the two between the start and the end of a steady run, divided, is the
number of coordinator requests one checkout operation (cart, items, checkout, and the
consumer's writes of the sale) sends to Cassandra. Each write then goes to every replica
of every DC, so this is the figure that explains the CPU the Cassandra VMs burn.
Both counters are scraped on the same interval; over a run of a minute or more the
few seconds by which their scrapes differ change the ratio by a few percent at most.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

REQUESTS_QUERY = "sum by (scope) (cassandra_clientrequest_latency_count)"
CHECKOUTS_QUERY = 'sum(checkouts_total{outcome=~"completed|declined"})'


class ProfileUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Counters:
    requests: dict[str, float]  # Cassandra coordinator requests so far, by kind
    checkouts: float  # checkout operations the APIs finished so far (sold or declined)


def _vector(answer: dict[str, Any]) -> list[tuple[dict[str, str], float]]:
    if answer.get("status") != "success":
        raise ProfileUnavailable(f"Prometheus refused the query: {answer.get('error', answer)}")
    return [(item["metric"], float(item["value"][1])) for item in answer["data"]["result"]]


def parse(requests_answer: dict[str, Any], checkouts_answer: dict[str, Any]) -> Counters:
    requests = {metric.get("scope", "?"): value for metric, value in _vector(requests_answer)}
    checkouts = sum(value for _, value in _vector(checkouts_answer))
    if not requests:
        raise ProfileUnavailable("Prometheus has no cassandra_clientrequest_latency_count series")
    return Counters(requests, checkouts)


def _query(prometheus: str, promql: str) -> dict[str, Any]:
    url = f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            body: dict[str, Any] = json.load(answer)
    except OSError as error:
        raise ProfileUnavailable(f"cannot query Prometheus at {prometheus}: {error}") from error
    return body


def read(prometheus: str) -> Counters:
    return parse(_query(prometheus, REQUESTS_QUERY), _query(prometheus, CHECKOUTS_QUERY))


def per_checkout(before: Counters, after: Counters) -> dict[str, float]:
    """Coordinator requests per checkout operation by kind, kinds that had any."""
    checkouts = after.checkouts - before.checkouts
    if checkouts <= 0:
        return {}
    spent = {kind: after.requests[kind] - before.requests.get(kind, 0.0) for kind in after.requests}
    return {kind: count / checkouts for kind, count in sorted(spent.items()) if count > 0}


def describe(profile: dict[str, float]) -> str:
    shown = {kind: count for kind, count in profile.items() if count >= 0.05}  # not "0.0"
    return ", ".join(f"{kind} {count:.1f}" for kind, count in shown.items()) or "no figures"
