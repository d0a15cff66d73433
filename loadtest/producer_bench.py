"""What the API's Kafka producer settings cost: linger and the thread hop, measured.

    ./lab bench-producer [--lingers 0,1,5,20] [--rates 20,100] [--seconds 20]

For each linger x hand-over mode x rate, runs `checkout-producer-bench` (the API's own
producer code and settings, acks=all with idempotence) on an app node against a twin of
the sales topic, and reads the brokers' CPU from their cgroups over the same window
(less their idle CPU, measured first). 20/s is one region's API at the SLO's 50 ops/s,
100/s one at the bench's aim. Prints a table and writes
loadtest/results/<date>-producer.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtest.lab_usage import UsageMeter
from loadtest.raw_kafka import create_twin, delete_topic
from loadtest.remote import on_host
from loadtest.targets import LAB_INVENTORY, REPO, Targets, from_inventory

RESULTS = REPO / "loadtest" / "results"
TOPIC = "checkout-bench-producer"
MODES = ("thread", "direct")
COLUMNS = ("linger_ms", "mode", "rate", "records", "p50_ms", "p99_ms", "max_ms", "client_cpu_ms_per_record")


def broker_idle_cores(targets: Targets, seconds: float = 10.0) -> float:
    with UsageMeter(targets.kafka_hosts) as meter:
        time.sleep(seconds)
        usage = meter.read()
    return sum(vm.cpu_cores for vm in usage.vms.values())


def one_run(
    targets: Targets, inventory: Path, app: str, linger: int, mode: str, rate: float, seconds: float
) -> dict[str, Any]:
    command = (
        f"checkout-producer-bench --topic {TOPIC} --mode {mode} --linger-ms {linger} "
        f"--rate {rate:g} --seconds {seconds:g}"
    )
    with UsageMeter(targets.kafka_hosts) as meter:
        output = on_host(inventory, app, command)
        usage = meter.read()
    figures: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    figures["broker_cores"] = sum(vm.cpu_cores for vm in usage.vms.values())
    figures["broker_window_s"] = usage.seconds
    return figures


def broker_cpu_ms_per_record(figures: dict[str, Any], idle_cores: float) -> float | None:
    if not figures["records"]:
        return None
    busy = max(figures["broker_cores"] - idle_cores, 0.0)
    return round(busy * figures["broker_window_s"] * 1000 / figures["records"], 3)


def table(rows: list[dict[str, Any]]) -> str:
    header = [*COLUMNS, "broker_cpu_ms_per_record"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(row.get(column, "")) for column in header) + " |" for row in rows]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inventory", type=Path, default=LAB_INVENTORY)
    parser.add_argument("--lingers", default="0,1,5,20", help="linger.ms values")
    parser.add_argument("--rates", default="20,100", help="records per second from one API")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    try:
        args.lingers = [int(v) for v in args.lingers.split(",")]
        args.rates = [float(v) for v in args.rates.split(",")]
    except ValueError:
        parser.error("--lingers and --rates are comma-separated numbers")
    if min(args.lingers) < 0 or min(args.rates) <= 0 or args.seconds <= 0:
        parser.error("lingers must be 0 or more; rates and --seconds positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    targets = from_inventory(args.inventory)
    if not targets.app_hosts or not targets.kafka_hosts:
        print("the inventory needs an app host and a Kafka broker", file=sys.stderr)
        return 2
    app, broker = targets.app_hosts[0], targets.kafka_hosts[0]
    started = datetime.now(UTC)
    create_twin(targets, args.inventory, broker, TOPIC)
    rows: list[dict[str, Any]] = []
    try:
        idle = broker_idle_cores(targets)
        print(f"brokers idle: {idle:.3f} cores; runs on {app}, {args.seconds:g} s each", flush=True)
        for rate in args.rates:
            for linger in args.lingers:
                for mode in MODES:
                    row = one_run(targets, args.inventory, app, linger, mode, rate, args.seconds)
                    row["broker_cpu_ms_per_record"] = broker_cpu_ms_per_record(row, idle)
                    rows.append(row)
                    print(
                        "  " + "  ".join(f"{c}={row.get(c)}" for c in (*COLUMNS, "broker_cpu_ms_per_record")),
                        flush=True,
                    )
    finally:
        delete_topic(targets, args.inventory, broker, TOPIC)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{started:%Y-%m-%d}-producer"
    stem.with_suffix(".json").write_text(
        json.dumps({"started": started.isoformat(), "idle_broker_cores": idle, "runs": rows}, indent=2)
    )
    stem.with_suffix(".md").write_text(
        f"# Kafka producer settings, {started:%Y-%m-%d %H:%M} UTC\n\n"
        f"`./lab bench-producer` on {app}; brokers idle {idle:.3f} cores (subtracted).\n\n{table(rows)}\n"
    )
    print(table(rows))
    print(f"Results: {stem}.md, .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
