"""How far the platform goes past (or short of) 50 checkouts/s, next to the raw parts.

    ./lab bench [--rates 5,10,20,50,100,...] [--hold-s 60] [--processes 2] [--all]

Steps the offered checkout rate (each step a headless Locust run judged by the same SLO
as the deploy validation, at that step's rate), records the lab's CPU and memory at each
step, stops once the pipeline saturates (completes under 90 % of the offered rate), then
measures raw Cassandra writes of the sale row shape and Kafka's producer perf test, and
writes the figures, a chart and the machine's facts to
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

import psutil

from loadtest import db_profile, raw_cassandra, raw_kafka
from loadtest.bench_report import chart, markdown
from loadtest.bench_step import Step
from loadtest.lab_usage import UsageMeter
from loadtest.run import RunResult, run_locust
from loadtest.slo import Slo, evaluate
from loadtest.targets import LAB_INVENTORY, REPO, Targets, from_inventory

RESULTS = REPO / "loadtest" / "results"
# What the consumer writes per sale: its one `sales` row, whatever the number of lines
# (they are inside it). The API moves the stock in the region's keyspace, and the day index
# is written once per branch and day, so neither counts per sale.
ROWS_PER_SALE = 1
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
        result: RunResult = run_locust(
            targets, label=f"bench-{rate:g}", rate=rate, hold_s=hold_s, processes=processes, ramp_s=min(10, hold_s / 4)
        )
        usage = meter.read()
    # Read before the verdict: its lookups are reads the checkouts did not cause.
    after = db_counters(targets)
    checks, stored = evaluate(Slo(rate=rate), result, targets)
    checkout = result.checkout
    return Step(
        offered=rate,
        achieved=checkout.rate if checkout else 0.0,
        requests=result.total.requests if result.total else 0,
        failures=result.total.failures if result.total else 0,
        p50_ms=checkout.p50_ms if checkout else 0.0,
        p95_ms=checkout.p95_ms if checkout else 0.0,
        p99_ms=checkout.p99_ms if checkout else 0.0,
        acked=len(result.acked),
        rows_written=stored.found * ROWS_PER_SALE,
        usage=usage,
        db_requests=db_profile.per_checkout(before, after) if before and after else {},
        checks=checks,
    )


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
        f"Cassandra requests per checkout: {db_profile.describe(step.db_requests)}  "
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
    args = parser.parse_args(argv)

    targets = from_inventory(args.inventory)
    started = datetime.now(UTC)
    print(f"{'offered':>7} {'achieved':>8} {'fail':>6} {'p50':>6} {'p95':>6} {'p99':>6}  lab usage", flush=True)
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
    broker = targets.kafka_hosts[0]
    print(f"Raw Kafka: kafka-producer-perf-test on {broker}, {args.kafka_records} records ...", flush=True)
    kafka = raw_kafka.measure(targets, args.inventory, broker, records=args.kafka_records, record_size=args.record_size)
    print(f"  {kafka.records_per_s:.0f} records/s, p99 {kafka.p99_ms:.0f} ms", flush=True)

    summary = summarize(steps, cassandra, kafka)
    print(summary["verdict"])
    write_results(args.out, started, steps, summary, cassandra, kafka)
    return 0


def summarize(steps: list[Step], cassandra: raw_cassandra.RawCassandra, kafka: raw_kafka.RawKafka) -> dict[str, object]:
    """Two ceilings: the highest offered rate that met the whole SLO, and the most checkouts/s
    the pipeline completed at all (where it saturates); ratios use the second, measured."""
    within_slo = max((s for s in steps if s.passed), key=lambda s: s.offered, default=None)
    busiest_step = max(steps, key=lambda s: s.achieved)
    rows_per_checkout = busiest_step.rows_written / busiest_step.acked if busiest_step.acked else 0.0
    pipeline_rows_per_s = busiest_step.achieved * rows_per_checkout
    roles = busiest_step.usage.by_role()
    busiest_role = max(roles.items(), key=lambda item: item[1], default=("?", 0.0))
    slo_text = (
        f"{within_slo.offered:g} checkouts/s" if within_slo else f"none of the steps (from {steps[0].offered:g}/s)"
    )
    verdict = (
        f"Highest rate within the SLO: {slo_text}. Most checkouts completed: {busiest_step.achieved:.1f}/s "
        f"(offered {busiest_step.offered:g}/s, checkout p95 {busiest_step.p95_ms:.0f} ms); "
        f"{rows_per_checkout:.1f} rows written by the consumer per checkout = {pipeline_rows_per_s:.0f} rows/s, "
        f"{pipeline_rows_per_s / cassandra.rows_per_s:.1%} of raw Cassandra ({cassandra.rows_per_s:.0f} rows/s at "
        f"{cassandra.consistency}); {busiest_step.achieved / kafka.records_per_s:.2%} of raw Kafka "
        f"({kafka.records_per_s:.0f} records/s). There the host used {busiest_step.usage.host_cpu_cores:.2f} of "
        f"{busiest_step.usage.host_cpus} cores, most of it {busiest_role[0]} VMs ({busiest_role[1]:.2f}), "
        f"Locust {busiest_step.usage.locust_cpu_cores:.2f}. Each checkout sent Cassandra "
        f"{db_profile.describe(busiest_step.db_requests)} coordinator requests (every write goes to all replicas)."
    )
    return {
        "ceiling_within_slo": within_slo.offered if within_slo else None,
        "ceiling_achieved": busiest_step.achieved,
        "rows_per_checkout": rows_per_checkout,
        "pipeline_rows_per_s": pipeline_rows_per_s,
        "ratio_to_raw_cassandra": pipeline_rows_per_s / cassandra.rows_per_s,
        "ratio_to_raw_kafka": busiest_step.achieved / kafka.records_per_s,
        "verdict": verdict,
    }


def write_results(
    out: Path,
    started: datetime,
    steps: list[Step],
    summary: dict[str, object],
    cassandra: raw_cassandra.RawCassandra,
    kafka: raw_kafka.RawKafka,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{started:%Y-%m-%d}-{socket.gethostname()}"
    facts = machine_facts()
    data = {
        "started": started.isoformat(),
        "machine": facts,
        "steps": [
            {**asdict(s), "passed": s.passed, "usage": {**asdict(s.usage), "by_role": s.usage.by_role()}} for s in steps
        ],
        "raw_cassandra": asdict(cassandra),
        "raw_kafka": asdict(kafka),
        "summary": summary,
    }
    stem.with_suffix(".json").write_text(json.dumps(data, indent=2, default=str))
    chart(stem.with_suffix(".png"), steps, cassandra, kafka, summary)
    stem.with_suffix(".md").write_text(
        markdown(started, facts, steps, summary, cassandra, kafka, stem.with_suffix(".png").name)
    )
    print(f"Results: {stem}.md, .json, .png")


if __name__ == "__main__":
    sys.exit(main())
