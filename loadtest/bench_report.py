"""The benchmark's chart (PNG) and its versioned Markdown report."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from matplotlib import ticker

from loadtest.bench_step import Step
from loadtest.db_profile import describe_cpu, describe_replica_writes, describe_requests, describe_stages

if TYPE_CHECKING:
    from loadtest.raw_cassandra import RawCassandra
    from loadtest.raw_kafka import RawKafka


def chart(path: Path, steps: list[Step], cassandra: RawCassandra, kafka: RawKafka, summary: dict[str, object]) -> None:
    offered = [s.offered for s in steps]
    figure, (rates, latency) = plt.subplots(1, 2, figsize=(12, 4.8))
    rates.plot(offered, offered, "--", color="grey", label="offered")
    rates.plot(offered, [s.achieved for s in steps], "o-", label="completed checkout ops/s")
    for step in steps:
        rates.annotate("PASS" if step.passed else "FAIL", (step.offered, step.achieved), textcoords="offset points",
                       xytext=(0, 8), ha="center", fontsize=8, color="green" if step.passed else "red")  # fmt: skip
    # Raw Cassandra's replica writes/s spent on operations of the measured cost: the ops/s it
    # would take if it did nothing else.
    raw_ceiling = summary.get("raw_ceiling_ops_per_s")
    if isinstance(raw_ceiling, int | float) and raw_ceiling > 0:
        per_op = f"{summary['replica_writes_per_op']:.0f}"
        rates.axhline(raw_ceiling, color="tab:orange", linestyle=":",
                      label=f"raw Cassandra replica writes/s / {per_op} per op")  # fmt: skip
    rates.set_xscale("log", base=2)
    rates.set_yscale("log", base=2)
    if isinstance(raw_ceiling, int | float) and raw_ceiling > 0:  # room for the raw line above the points
        rates.set_ylim(top=max(max(offered), raw_ceiling) * 1.5)
    rates.set_xlabel("offered checkout ops/s")
    rates.set_ylabel("checkout ops/s")
    rates.set_title(f"Throughput (raw Kafka: {kafka.records_per_s:,.0f} records/s, off the chart)")
    rates.legend(fontsize=8, loc="upper left")
    rates.grid(True, which="both", alpha=0.3)

    latency.plot(offered, [s.p50_ms for s in steps], "o-", label="p50")
    latency.plot(offered, [s.p95_ms for s in steps], "o-", label="p95")
    latency.plot(offered, [s.p99_ms for s in steps], "o-", label="p99")
    latency.axhline(100, color="tab:orange", linestyle=":", label="SLO p95 100 ms")
    latency.axhline(250, color="tab:red", linestyle=":", label="SLO p99 250 ms")
    latency.set_xscale("log", base=2)
    latency.set_yscale("log")
    latency.set_xlabel("offered checkout ops/s")
    latency.set_ylabel("checkout latency, ms")
    latency.set_title("Checkout latency")
    latency.legend(fontsize=8, loc="upper left")
    latency.grid(True, which="both", alpha=0.3)
    for axis in (rates, latency):
        # Ticks at the offered rates, written as plain numbers.
        axis.set_xticks(offered, [f"{rate:g}" for rate in offered])
        axis.xaxis.set_minor_formatter(ticker.NullFormatter())
    rates.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def markdown(
    started: datetime,
    facts: dict[str, str],
    steps: list[Step],
    summary: dict[str, object],
    cassandra: RawCassandra,
    kafka: RawKafka,
    chart_name: str,
    before_after: list[str] | None = None,
) -> str:
    lines = [
        f"# Checkout benchmark, {started:%Y-%m-%d %H:%M} UTC",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()),
        "",
        "Each step: a headless Locust run (steady shape) judged by the deploy SLO at that step's rate "
        "(completed checkout operations/s within 5 %, 0 failures, checkout p95 <= 100 ms, p99 <= 250 ms, lag 0 "
        "within 10 s, every acknowledged sale stored once). Achieved: completed checkout operations/s (a basket "
        "sold or declined, whatever its retries). CPU in cores averaged over the step (cgroups of the lab VMs). "
        "Per op, from Prometheus counters before and after the step divided by the operations the APIs "
        "finished: Cassandra coordinator requests by kind; replica writes (mutations applied by every node, in "
        "the shared sales keyspace and in the region keyspaces); CPU ms of the API, consumer and gateway. "
        "Checkout stages: the mean wall time of each sequential step of POST /carts/{id}/checkout "
        "(cart read, gateway charge, stock and Kafka publish together, checkout record).",
        "",
        "| offered/s | achieved ops/s | requests | failures | p50 ms | p95 ms | p99 ms | host CPU | Locust CPU | "
        "CPU by VM kind | host memory GiB | Cassandra requests per op | replica writes per op | CPU per op | "
        "checkout stages | SLO |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in steps:
        roles = ", ".join(f"{role} {cores:.2f}" for role, cores in sorted(s.usage.by_role().items()))
        failed = ", ".join(c.objective for c in s.checks if not c.passed)
        lines.append(
            f"| {s.offered:g} | {s.achieved:.1f} | {s.requests} | {s.failures} | {s.p50_ms:.0f} | {s.p95_ms:.0f} | "
            f"{s.p99_ms:.0f} | {s.usage.host_cpu_cores:.2f}/{s.usage.host_cpus} | {s.usage.locust_cpu_cores:.2f} | "
            f"{roles} | {s.usage.host_memory_used_mb / 1024:.1f} | {describe_requests(s.cost)} | "
            f"{describe_replica_writes(s.cost)} | {describe_cpu(s.cost)} | {describe_stages(s.cost)} | "
            f"{'PASS' if s.passed else 'FAIL: ' + failed} |"
        )
    lines += [
        "",
        f"Raw Cassandra (sale rows, {cassandra.consistency}, {cassandra.processes} processes x "
        f"{cassandra.concurrency} in flight): {cassandra.rows_per_s:,.0f} rows/s, {cassandra.errors} errors; "
        f"x {summary['replicas_per_row']} replicas per row (the shared keyspace's factors, summed) = "
        f"{summary['raw_replica_writes_per_s']:,.0f} replica writes/s.",
        "",
        f"Raw Kafka (kafka-producer-perf-test, acks=all, idempotent, {kafka.record_size} B records): "
        f"{kafka.records_per_s:,.0f} records/s ({kafka.mb_per_s:.1f} MB/s), p95 {kafka.p95_ms:.0f} ms, "
        f"p99 {kafka.p99_ms:.0f} ms.",
        "",
        f"**{summary['verdict']}**",
        "",
        f"![throughput and latency per step]({chart_name})",
        "",
        *(before_after or []),
    ]
    return "\n".join(lines)
