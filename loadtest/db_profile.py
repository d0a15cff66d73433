"""What one checkout operation costs the database and the services, read from Prometheus.

Cassandra counts the requests it coordinates by kind (Write, Read, CASWrite, CASRead,
RangeSlice, ...) and, on every node, the mutations it applied per keyspace (its replica
writes); the API counts its checkouts, and every service's process collector its CPU
seconds. All are scraped by Prometheus. The difference of each between the start and the
end of a steady run, divided by the difference of the checkouts, is what one checkout
operation (cart, items, checkout, and the consumer's writes of the sale) costs: the
coordinator requests it sends, the replica writes they become in every DC, and the CPU
milliseconds of the API, the consumer and the payment gateway. The API also times each
sequential stage of a checkout (checkout_stage_duration_seconds): the differences of a
stage's sum and count give its mean wall time over the run, i.e. where a checkout waits.
The counters are scraped on the same interval; over a run of a minute or more the few
seconds by which their scrapes differ change the ratios by a few percent at most.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from checkout.domain import CheckoutStage

SHARED_KEYSPACE = "checkout"  # sales, in every DC; the others (checkout_yangon, ...) are the regions'
BENCH_KEYSPACE = "checkout_bench"  # the raw writer's scratch copy: not the pipeline's
REQUESTS_QUERY = "sum by (scope) (cassandra_clientrequest_latency_count)"
CHECKOUTS_QUERY = 'sum(checkouts_total{outcome=~"completed|declined"})'
REPLICA_WRITES_QUERY = (
    'sum by (keyspace) (cassandra_keyspace_replica_writes{keyspace=~"checkout|checkout_[a-z]+",'
    f'keyspace!="{BENCH_KEYSPACE}"}})'
)
SERVICES = {"checkout_api": "API", "checkout_consumer": "consumer", "payment_gateway": "gateway"}
CPU_QUERY = f'sum by (job) (process_cpu_seconds_total{{job=~"{"|".join(SERVICES)}"}})'
STAGE_SECONDS_QUERY = "sum by (stage) (checkout_stage_duration_seconds_sum)"
STAGE_COUNT_QUERY = "sum by (stage) (checkout_stage_duration_seconds_count)"
STAGES = tuple(stage.value for stage in CheckoutStage)  # in the order a checkout runs them
# Per-DC replication factor the deployment derives when the inventory sets none (roles/checkout_app).
DEFAULT_MAX_RF = 3


class ProfileUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Counters:
    requests: dict[str, float]  # Cassandra coordinator requests so far, by kind
    checkouts: float  # checkout operations the APIs finished so far (sold or declined)
    replica_writes: dict[str, float] = field(default_factory=dict)  # mutations applied, by keyspace
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # CPU seconds, by service (job)
    stage_seconds: dict[str, float] = field(default_factory=dict)  # checkout stage wall time, by stage
    stage_counts: dict[str, float] = field(default_factory=dict)  # checkout stages timed, by stage


@dataclass(frozen=True)
class OpCost:
    """Per checkout operation the APIs finished over a window; empty figures: not exported."""

    ops: float  # the operations counted (the divisor)
    requests: dict[str, float]  # Cassandra coordinator requests, by kind
    replica_writes: dict[str, float]  # replica writes, by keyspace
    cpu_ms: dict[str, float]  # CPU milliseconds, by service (job)
    stage_ms: dict[str, float] = field(default_factory=dict)  # mean wall ms of each checkout stage

    @property
    def requests_total(self) -> float:
        return sum(self.requests.values())

    @property
    def replica_writes_total(self) -> float | None:
        return sum(self.replica_writes.values()) if self.replica_writes else None

    def replica_writes_by_kind(self) -> dict[str, float]:
        """Shared (the sales keyspace, in every DC) and region (each region's own keyspace)."""
        kinds: dict[str, float] = {}
        for keyspace, count in self.replica_writes.items():
            kind = "shared" if keyspace == SHARED_KEYSPACE else "region"
            kinds[kind] = kinds.get(kind, 0.0) + count
        return kinds

    def figures(self) -> dict[str, object]:
        """Everything, totals included, for the JSON results."""
        return {
            "ops": self.ops,
            "requests": self.requests,
            "requests_total": self.requests_total,
            "replica_writes": self.replica_writes,
            "replica_writes_total": self.replica_writes_total,
            "replica_writes_by_kind": self.replica_writes_by_kind(),
            "cpu_ms": self.cpu_ms,
            "stage_ms": self.stage_ms,
        }


NO_COST = OpCost(0.0, {}, {}, {})


def _vector(answer: dict[str, Any]) -> list[tuple[dict[str, str], float]]:
    if answer.get("status") != "success":
        raise ProfileUnavailable(f"Prometheus refused the query: {answer.get('error', answer)}")
    return [(item["metric"], float(item["value"][1])) for item in answer["data"]["result"]]


def _by(label: str, answer: dict[str, Any] | None) -> dict[str, float]:
    return {metric.get(label, "?"): value for metric, value in _vector(answer)} if answer else {}


def parse(
    requests_answer: dict[str, Any],
    checkouts_answer: dict[str, Any],
    replica_writes_answer: dict[str, Any] | None = None,
    cpu_answer: dict[str, Any] | None = None,
    stage_answers: tuple[dict[str, Any], dict[str, Any]] | None = None,
) -> Counters:
    """The coordinator requests are required; replica writes, CPU and the stages (sums,
    counts) may be missing (a lab deployed before they were exported): their figures then
    stay empty."""
    requests = _by("scope", requests_answer)
    checkouts = sum(value for _, value in _vector(checkouts_answer))
    if not requests:
        raise ProfileUnavailable("Prometheus has no cassandra_clientrequest_latency_count series")
    seconds, counts = stage_answers or (None, None)
    return Counters(
        requests,
        checkouts,
        _by("keyspace", replica_writes_answer),
        _by("job", cpu_answer),
        _by("stage", seconds),
        _by("stage", counts),
    )


def _query(prometheus: str, promql: str) -> dict[str, Any]:
    url = f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            body: dict[str, Any] = json.load(answer)
    except OSError as error:
        raise ProfileUnavailable(f"cannot query Prometheus at {prometheus}: {error}") from error
    return body


def read(prometheus: str) -> Counters:
    return parse(
        _query(prometheus, REQUESTS_QUERY),
        _query(prometheus, CHECKOUTS_QUERY),
        _query(prometheus, REPLICA_WRITES_QUERY),
        _query(prometheus, CPU_QUERY),
        (_query(prometheus, STAGE_SECONDS_QUERY), _query(prometheus, STAGE_COUNT_QUERY)),
    )


def _per_op(before: dict[str, float], after: dict[str, float], ops: float) -> dict[str, float]:
    """Increase per operation by key, keys that increased (a restarted node's counter that went
    back is left out rather than subtracted)."""
    spent = {key: after[key] - before.get(key, 0.0) for key in after}
    return {key: count / ops for key, count in sorted(spent.items()) if count > 0}


def _stage_means(before: Counters, after: Counters) -> dict[str, float]:
    """Mean wall ms of each stage timed in the window, in the order the checkout runs them."""
    means: dict[str, float] = {}
    order = {stage: place for place, stage in enumerate(STAGES)}
    for stage in sorted(after.stage_counts, key=lambda s: order.get(s, len(STAGES))):
        timed = after.stage_counts[stage] - before.stage_counts.get(stage, 0.0)
        spent = after.stage_seconds.get(stage, 0.0) - before.stage_seconds.get(stage, 0.0)
        if timed > 0 and spent >= 0:
            means[stage] = spent / timed * 1000
    return means


def per_checkout(before: Counters, after: Counters) -> dict[str, float]:
    """Coordinator requests per checkout operation by kind, kinds that had any."""
    return cost(before, after).requests


def cost(before: Counters, after: Counters) -> OpCost:
    ops = after.checkouts - before.checkouts
    if ops <= 0:
        return NO_COST
    cpu_s = _per_op(before.cpu_seconds, after.cpu_seconds, ops)
    return OpCost(
        ops,
        _per_op(before.requests, after.requests, ops),
        _per_op(before.replica_writes, after.replica_writes, ops),
        {job: seconds * 1000 for job, seconds in cpu_s.items()},
        _stage_means(before, after),
    )


def replicas_per_row(factors: Mapping[str, int | str]) -> int:
    """Replica writes one row costs: the sum of the keyspace's per-DC replication factors."""
    return sum(int(factor) for factor in factors.values())


def derived_factors(cassandra_by_dc: Mapping[str, list[str]], max_rf: int = DEFAULT_MAX_RF) -> dict[str, int]:
    """The factors the deployment derives from the inventory when it sets none: each DC's
    node count, at most `max_rf`."""
    return {dc: min(len(nodes), max_rf) for dc, nodes in cassandra_by_dc.items()}


def describe(profile: dict[str, float]) -> str:
    shown = {kind: count for kind, count in profile.items() if count >= 0.05}  # not "0.0"
    return ", ".join(f"{kind} {count:.1f}" for kind, count in shown.items()) or "no figures"


def describe_requests(op: OpCost) -> str:
    return f"{describe(op.requests)} (total {op.requests_total:.1f})" if op.requests else "no figures"


def describe_replica_writes(op: OpCost) -> str:
    total = op.replica_writes_total
    if total is None:
        return "no figures"
    kinds = op.replica_writes_by_kind()
    return f"{total:.1f} (shared {kinds.get('shared', 0.0):.1f}, region {kinds.get('region', 0.0):.1f})"


def describe_cpu(op: OpCost) -> str:
    shown = [f"{SERVICES.get(job, job)} {ms:.1f}" for job, ms in op.cpu_ms.items()]
    return ", ".join(shown) + " ms" if shown else "no figures"


def describe_stages(op: OpCost) -> str:
    shown = [f"{stage} {ms:.0f}" for stage, ms in op.stage_ms.items()]
    return ", ".join(shown) + " ms" if shown else "no figures"
