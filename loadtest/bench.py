"""How far the platform goes past (or short of) 50 checkout ops/s, next to the raw parts.

    ./lab bench [--rates 5,10,20,50,100,...] [--hold-s 60] [--processes 2] [--all]
                [--before loadtest/results/<earlier>.json]

Steps the offered checkout rate (each step a headless Locust run judged by the same SLO
as the deploy validation, at that step's rate), records the lab's CPU and memory at each
step and what one operation cost (Cassandra requests and replica writes, the services'
CPU), stops once the pipeline saturates (completes under 90 % of the offered operations),
then measures raw Cassandra writes of the sale row shape and Kafka's producer perf test,
and writes the figures, a chart and the machine's facts to
loadtest/results/<date>-<host>.{md,json,png}. Prints as it goes.
"""

from __future__ import annotations

import argparse
import json
import platform
import socket
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from loadtest import bench_compare, db_profile, raw_cassandra, raw_kafka
from loadtest.bench_report import chart, markdown
from loadtest.bench_step import Step
from loadtest.bench_summary import summarize
from loadtest.lab_usage import UsageMeter
from loadtest.run import Load, RunResult, run_locust
from loadtest.slo import Slo, evaluate
from loadtest.targets import LAB_INVENTORY, REPO, Targets, from_inventory

RESULTS = REPO / "loadtest" / "results"
# A step whose achieved rate is below this share of the offered rate has saturated the pipeline.
SATURATED = 0.9


def db_counters(targets: Targets) -> db_profile.Counters | None:
    if targets.prometheus is None:
        return None
    try:
        return db_profile.read(targets.prometheus)
    except db_profile.ProfileUnavailable as error:
        print(f"  (no database profile for this step: {error})", flush=True)
        return None


def run_step(targets: Targets, rate: float, hold_s: float, processes: int) -> Step:
    before = db_counters(targets)
    with UsageMeter(targets.lab_vms) as meter:
        load = Load(rate, hold_s, ramp_s=min(10, hold_s / 4), processes=processes)
        result: RunResult = run_locust(targets, load, label=f"bench-{rate:g}")
        usage = meter.read()
    # Read before the verdict: its lookups are reads the checkouts did not cause.
    after = db_counters(targets)
    checks, _ = evaluate(Slo(rate=rate), result, targets)
    checkout, operations = result.checkout, result.operations
    return Step(
        offered=rate,
        # Completed operations (sold or declined), as the SLO counts them: retried checkout
        # requests are not more checkouts.
        achieved=operations.rate if operations else 0.0,
        requests=result.total.requests if result.total else 0,
        failures=result.total.failures if result.total else 0,
        p50_ms=checkout.p50_ms if checkout else 0.0,
        p95_ms=checkout.p95_ms if checkout else 0.0,
        p99_ms=checkout.p99_ms if checkout else 0.0,
        acked=len(result.acked),
        usage=usage,
        cost=db_profile.cost(before, after) if before and after else db_profile.NO_COST,
        checks=checks,
    )


def replicas_per_row(targets: Targets) -> tuple[int, str]:
    """Replica writes per raw row: raw_cassandra copies the shared keyspace's replication
    to its scratch keyspace, so the sum of the shared keyspace's per-DC factors; read from
    the cluster, else derived from the inventory as the deployment derives it by default."""
    try:
        cluster = raw_cassandra.connect(*next(iter(targets.cassandra_by_dc.items())), "LOCAL_QUORUM")
        try:
            cluster.connect()
            strategy = cluster.metadata.keyspaces[raw_cassandra.SOURCE_KEYSPACE].replication_strategy
            factors = getattr(strategy, "dc_replication_factors", None) or {"all": strategy.replication_factor}
        finally:
            cluster.shutdown()
        return db_profile.replicas_per_row(factors), f"keyspace {raw_cassandra.SOURCE_KEYSPACE}: {factors}"
    except Exception as error:  # whatever failed, the inventory still tells
        factors = db_profile.derived_factors(targets.cassandra_by_dc)
        return db_profile.replicas_per_row(factors), f"derived from the inventory {factors} ({error})"


def machine_facts() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return {
        "host": socket.gethostname(),
        "cpu": cpu,
        "cpus": str(psutil.cpu_count()),
        "memory_gib": f"{psutil.virtual_memory().total / 2**30:.1f}",
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def step_line(step: Step) -> str:
    roles = step.usage.by_role()
    cpu = " ".join(f"{role} {cores:.2f}" for role, cores in sorted(roles.items()))
    return (
        f"{step.offered:>7g} {step.achieved:>8.1f} {step.failures:>6} {step.p50_ms:>6.0f} {step.p95_ms:>6.0f} "
        f"{step.p99_ms:>6.0f}  host {step.usage.host_cpu_cores:.2f}/{step.usage.host_cpus} cores, locust "
        f"{step.usage.locust_cpu_cores:.2f}, {cpu}, mem {step.usage.host_memory_used_mb / 1024:.1f} GiB, "
        f"per op: Cassandra requests {db_profile.describe_requests(step.cost)}, replica writes "
        f"{db_profile.describe_replica_writes(step.cost)}, CPU {db_profile.describe_cpu(step.cost)}, "
        f"checkout stages {db_profile.describe_stages(step.cost)}  "
        f"{'PASS' if step.passed else 'FAIL: ' + ', '.join(c.objective for c in step.checks if not c.passed)}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inventory", type=Path, default=LAB_INVENTORY)
    parser.add_argument("--rates", default="5,10,20,50,100,200,400,800,1600", help="offered checkout rates, ops/s")
    parser.add_argument("--hold-s", type=float, default=60.0, help="seconds at each rate")
    parser.add_argument("--processes", type=int, default=2, help="Locust worker processes")
    parser.add_argument("--all", action="store_true", help="keep stepping after the pipeline saturates")
    parser.add_argument("--consistency", default="LOCAL_QUORUM", help="raw Cassandra writes' level (the app's)")
    parser.add_argument("--raw-seconds", type=float, default=30.0, help="length of the raw Cassandra run")
    parser.add_argument("--kafka-records", type=int, default=300_000)
    parser.add_argument("--record-size", type=int, default=1024, help="bytes, about one sale event")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--before", type=Path, help="an earlier results JSON: adds a before / after table")
    args = parser.parse_args(argv)

    # Read it first: a wrong path should not cost a whole run.
    before = bench_compare.load(args.before) if args.before else None
    targets = from_inventory(args.inventory)
    started = datetime.now(UTC)
    print(f"{'offered':>7} {'ops/s':>8} {'fail':>6} {'p50':>6} {'p95':>6} {'p99':>6}  lab usage", flush=True)
    steps: list[Step] = []
    for rate in (float(r) for r in args.rates.split(",")):
        step = run_step(targets, rate, args.hold_s, args.processes)
        steps.append(step)
        print(step_line(step), flush=True)
        # Past saturation more load only queues: stop once the pipeline no longer keeps up.
        if step.achieved < SATURATED * rate and not args.all:
            break

    print(f"Raw Cassandra: {args.raw_seconds:g} s of sale rows at {args.consistency} ...", flush=True)
    cassandra = raw_cassandra.measure(
        targets, seconds=args.raw_seconds, processes=args.processes, consistency=args.consistency
    )
    print(f"  {cassandra.rows_per_s:.0f} rows/s ({cassandra.rows} rows, {cassandra.errors} errors)", flush=True)
    replicas, source = replicas_per_row(targets)
    print(f"  {replicas} replicas per row ({source})", flush=True)
    broker = targets.kafka_hosts[0]
    print(f"Raw Kafka: kafka-producer-perf-test on {broker}, {args.kafka_records} records ...", flush=True)
    kafka = raw_kafka.measure(targets, args.inventory, broker, records=args.kafka_records, record_size=args.record_size)
    print(f"  {kafka.records_per_s:.0f} records/s, p99 {kafka.p99_ms:.0f} ms", flush=True)

    summary = summarize(steps, cassandra, kafka, replicas)
    print(summary["verdict"])
    write_results(args.out, started, steps, summary, cassandra, kafka, before, args.before)
    return 0


def write_results(
    out: Path,
    started: datetime,
    steps: list[Step],
    summary: dict[str, object],
    cassandra: raw_cassandra.RawCassandra,
    kafka: raw_kafka.RawKafka,
    before: dict[str, Any] | None = None,
    before_path: Path | None = None,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{started:%Y-%m-%d}-{socket.gethostname()}"
    facts = machine_facts()
    data = {
        "started": started.isoformat(),
        "machine": facts,
        "steps": [
            {
                **asdict(s),
                "passed": s.passed,
                "usage": {**asdict(s.usage), "by_role": s.usage.by_role()},
                "cost": s.cost.figures(),
            }
            for s in steps
        ],
        "raw_cassandra": asdict(cassandra),
        "raw_kafka": asdict(kafka),
        "summary": summary,
    }
    stem.with_suffix(".json").write_text(json.dumps(data, indent=2, default=str))
    chart(stem.with_suffix(".png"), steps, cassandra, kafka, summary)
    name = before_path.name if before_path else "an earlier run"
    compared = bench_compare.before_after(before, data, name) if before else None
    stem.with_suffix(".md").write_text(
        markdown(started, facts, steps, summary, cassandra, kafka, stem.with_suffix(".png").name, compared)
    )
    print(f"Results: {stem}.md, .json, .png")


if __name__ == "__main__":
    sys.exit(main())
