"""A "before / after" table: this run's figures next to an earlier results JSON's.

Earlier files may predate some figures (results before 2026-11-29 have no replica writes
or CPU per operation, and counted checkout requests/s, retries included, as the achieved
rate): what a file has is shown, "n/a" otherwise. The coordinator requests and the host's
CPU come from the busiest step when the summary does not carry them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loadtest.bench_summary import RATE_UNIT
from loadtest.db_profile import SERVICES

NA = "n/a"


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    if not isinstance(data.get("summary"), dict):
        raise ValueError(f"{path} is not a benchmark results file (no summary)")
    return data


def _busiest_step(data: dict[str, Any]) -> dict[str, Any]:
    steps: list[dict[str, Any]] = data.get("steps") or []
    return max(steps, key=lambda s: float(s.get("achieved") or 0), default={})


def _number(value: Any, digits: int = 1) -> str:
    return f"{float(value):,.{digits}f}" if isinstance(value, int | float) else NA


def _percent(value: Any) -> str:
    return f"{float(value):.1%}" if isinstance(value, int | float) else NA


def _kinds(profile: Any) -> str:
    if not isinstance(profile, dict) or not profile:
        return NA
    return ", ".join(f"{kind} {float(count):.1f}" for kind, count in sorted(profile.items()) if count >= 0.05)


def figures(data: dict[str, Any]) -> dict[str, str]:
    """Label -> formatted value, in the table's order."""
    summary: dict[str, Any] = data["summary"]
    step = _busiest_step(data)
    requests = summary.get("requests_per_op", step.get("db_requests"))
    requests_total = summary.get("requests_per_op_total")
    if requests_total is None and isinstance(requests, dict) and requests:
        requests_total = sum(requests.values())
    by_kind = summary.get("replica_writes_per_op_by_kind") or {}
    cpu = summary.get("cpu_ms_per_op") or {}
    within = summary.get("ceiling_within_slo", NA)
    raw: dict[str, Any] = data.get("raw_cassandra") or {}
    kafka: dict[str, Any] = data.get("raw_kafka") or {}
    usage: dict[str, Any] = step.get("usage") or {}
    get = summary.get
    return {
        "highest rate within the SLO, ops/s": "none" if within is None else _number(within, 0),
        "most completed, /s": _number(get("ceiling_achieved")),
        "offered there, /s": _number(get("busiest_offered", step.get("offered")), 0),
        "checkout p95 there, ms": _number(get("busiest_p95_ms", step.get("p95_ms")), 0),
        "host CPU there, cores": _number(get("busiest_host_cpu_cores", usage.get("host_cpu_cores")), 2),
        "Cassandra requests per op": _kinds(requests),
        "Cassandra requests per op, total": _number(requests_total),
        "replica writes per op": _number(get("replica_writes_per_op")),
        "replica writes per op, shared keyspace": _number(by_kind.get("shared")),
        "replica writes per op, region keyspaces": _number(by_kind.get("region")),
        **{f"{name} CPU per op, ms": _number(cpu.get(job)) for job, name in SERVICES.items()},
        "pipeline replica writes/s": _number(get("pipeline_replica_writes_per_s"), 0),
        "raw Cassandra sale rows/s": _number(get("raw_rows_per_s", raw.get("rows_per_s")), 0),
        "replicas per row": _number(get("replicas_per_row"), 0),
        "raw Cassandra replica writes/s": _number(get("raw_replica_writes_per_s"), 0),
        "pipeline share of raw replica writes/s": _percent(get("replica_write_share_of_raw")),
        "raw Kafka records/s": _number(kafka.get("records_per_s"), 0),
    }


def before_after(before: dict[str, Any], after: dict[str, Any], before_name: str) -> list[str]:
    """Markdown lines: the table and, for an older file, what its achieved rate counted."""
    old, new = figures(before), figures(after)
    lines = [
        f"## Before / after ({before_name})",
        "",
        f"| figure | before ({str(before.get('started', '?'))[:16]}) | after ({str(after.get('started', '?'))[:16]}) |",
        "|---|---|---|",
    ]
    lines += [f"| {label} | {old[label]} | {new[label]} |" for label in new]
    if before["summary"].get("rate_unit") != RATE_UNIT:
        lines += [
            "",
            "Before: the achieved rate counted checkout requests/s (retried ones included), not operations, "
            "and the raw Cassandra rows had the sale row shape of that day's data model.",
        ]
    return [*lines, ""]
