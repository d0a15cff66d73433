"""The benchmark's summary: its ceilings, what an operation costs there, and the raw parts.

Every figure goes into the results JSON under `summary` (so a later run can compare with
it, see bench_compare.py); the verdict is the same in words.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loadtest.bench_step import Step
from loadtest.db_profile import describe_cpu, describe_replica_writes, describe_requests

if TYPE_CHECKING:
    from loadtest.raw_cassandra import RawCassandra
    from loadtest.raw_kafka import RawKafka

RATE_UNIT = "checkout ops/s"  # results before 2026-11-29 counted checkout requests/s


def share(part: float | None, whole: float | None) -> float | None:
    return part / whole if part is not None and whole else None


def pipeline_vs_raw(
    replica_writes_per_op: float | None, ops_per_s: float, raw_rows_per_s: float, replicas_per_row: int
) -> dict[str, float | None]:
    """The pipeline's replica writes/s at a rate against the raw writer's: each raw row is
    applied by `replicas_per_row` replicas (the shared keyspace's factors, summed)."""
    pipeline = replica_writes_per_op * ops_per_s if replica_writes_per_op is not None else None
    raw = raw_rows_per_s * replicas_per_row
    return {
        "pipeline_replica_writes_per_s": pipeline,
        "raw_replica_writes_per_s": raw,
        "replica_write_share_of_raw": share(pipeline, raw),
        # The ops/s Cassandra would take if it did nothing but these replica writes.
        "raw_ceiling_ops_per_s": share(raw, replica_writes_per_op),
    }


def summarize(steps: list[Step], cassandra: RawCassandra, kafka: RawKafka, replicas_per_row: int) -> dict[str, object]:
    """Two ceilings: the highest offered rate that met the whole SLO, and the most checkout
    operations/s the pipeline completed at all (where it saturates); costs and ratios are the
    second's, measured."""
    within_slo = max((s for s in steps if s.passed), key=lambda s: s.offered, default=None)
    busiest = max(steps, key=lambda s: s.achieved)
    cost = busiest.cost
    versus = pipeline_vs_raw(cost.replica_writes_total, busiest.achieved, cassandra.rows_per_s, replicas_per_row)
    roles = busiest.usage.by_role()
    busiest_role = max(roles.items(), key=lambda item: item[1], default=("?", 0.0))
    slo_text = f"{within_slo.offered:g} ops/s" if within_slo else f"none of the steps (from {steps[0].offered:g}/s)"
    pipeline, raw, ratio = (
        versus["pipeline_replica_writes_per_s"],
        versus["raw_replica_writes_per_s"],
        versus["replica_write_share_of_raw"],
    )
    replica_text = (
        f"{pipeline:.0f} replica writes/s, {ratio:.1%} of raw Cassandra's {raw:.0f} replica writes/s "
        f"({cassandra.rows_per_s:.0f} sale rows/s at {cassandra.consistency} x {replicas_per_row} replicas)"
        if pipeline is not None and ratio is not None
        else f"replica writes not measured; raw Cassandra {raw:.0f} replica writes/s "
        f"({cassandra.rows_per_s:.0f} sale rows/s at {cassandra.consistency} x {replicas_per_row} replicas)"
    )
    verdict = (
        f"Highest rate within the SLO: {slo_text}. Most checkout operations completed: {busiest.achieved:.1f}/s "
        f"(offered {busiest.offered:g}/s, checkout p95 {busiest.p95_ms:.0f} ms). There each operation cost "
        f"Cassandra {describe_requests(cost)} coordinator requests and {describe_replica_writes(cost)} replica "
        f"writes; CPU {describe_cpu(cost)}. The pipeline at its ceiling: {replica_text}; "
        f"{busiest.achieved / kafka.records_per_s:.2%} of raw Kafka ({kafka.records_per_s:.0f} records/s). "
        f"The host used {busiest.usage.host_cpu_cores:.2f} of {busiest.usage.host_cpus} cores, most of it "
        f"{busiest_role[0]} VMs ({busiest_role[1]:.2f}), Locust {busiest.usage.locust_cpu_cores:.2f}."
    )
    return {
        "rate_unit": RATE_UNIT,
        "ceiling_within_slo": within_slo.offered if within_slo else None,
        "ceiling_achieved": busiest.achieved,
        "busiest_offered": busiest.offered,
        "busiest_p95_ms": busiest.p95_ms,
        "busiest_host_cpu_cores": busiest.usage.host_cpu_cores,
        "requests_per_op": cost.requests,
        "requests_per_op_total": cost.requests_total if cost.requests else None,
        "replica_writes_per_op": cost.replica_writes_total,
        "replica_writes_per_op_by_kind": cost.replica_writes_by_kind(),
        "cpu_ms_per_op": cost.cpu_ms,
        "raw_rows_per_s": cassandra.rows_per_s,
        "replicas_per_row": replicas_per_row,
        **versus,
        "ratio_to_raw_kafka": busiest.achieved / kafka.records_per_s,
        "verdict": verdict,
    }
