"""The raw Kafka produce ceiling: Kafka's own producer perf test, with the pipeline's
producer settings (acks=all, idempotence), on a twin of the sales topic.

A twin, not the sales topic itself: perf-test records are not sale events, and the
consumer would send every one of them to the dead-letter topic. The twin has the same
partitions, replication factor and min.insync.replicas. The tool runs on a broker VM
through Ansible, so it works against any inventory.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, replace
from pathlib import Path

from loadtest.remote import on_host
from loadtest.targets import Targets

BENCH_TOPIC = "checkout-bench"
_SUMMARY = re.compile(
    r"(?P<records>\d+) records sent, (?P<rate>[\d.]+) records/sec \((?P<mb>[\d.]+) MB/sec\), "
    r"(?P<avg>[\d.]+) ms avg latency, (?P<max>[\d.]+) ms max latency, (?P<p50>\d+) ms 50th, "
    r"(?P<p95>\d+) ms 95th, (?P<p99>\d+) ms 99th"
)


@dataclass(frozen=True)
class RawKafka:
    records_per_s: float
    mb_per_s: float
    records: int
    record_size: int
    p95_ms: float
    p99_ms: float


def parse_summary(output: str) -> RawKafka:
    matches = list(_SUMMARY.finditer(output))
    if not matches:
        raise RuntimeError(f"no summary line in the perf test output:\n{output[-1500:]}")
    last = matches[-1]
    return RawKafka(
        records_per_s=float(last["rate"]),
        mb_per_s=float(last["mb"]),
        records=int(last["records"]),
        record_size=0,
        p95_ms=float(last["p95"]),
        p99_ms=float(last["p99"]),
    )


def create_twin(targets: Targets, inventory: Path, broker_host: str, topic: str) -> None:
    """A topic with the sales topic's partitions, replication and min.insync.replicas."""
    bootstrap = ",".join(targets.kafka_bootstrap)
    on_host(
        inventory, broker_host,
        f"kafka-topics --bootstrap-server {bootstrap} --create --if-not-exists --topic {topic} "
        "--partitions 6 --replication-factor 3 --config min.insync.replicas=2 "
        "--config unclean.leader.election.enable=false",
    )  # fmt: skip


def delete_topic(targets: Targets, inventory: Path, broker_host: str, topic: str) -> None:
    on_host(
        inventory, broker_host,
        f"kafka-topics --bootstrap-server {','.join(targets.kafka_bootstrap)} --delete --topic {topic}",
    )  # fmt: skip


def measure(
    targets: Targets, inventory: Path, broker_host: str, *, records: int = 300_000, record_size: int = 1024
) -> RawKafka:
    bootstrap = ",".join(targets.kafka_bootstrap)
    create_twin(targets, inventory, broker_host, BENCH_TOPIC)
    try:
        output = on_host(
            inventory, broker_host,
            f"kafka-producer-perf-test --topic {BENCH_TOPIC} --num-records {records} --record-size {record_size} "
            f"--throughput -1 --producer-props bootstrap.servers={shlex.quote(bootstrap)} acks=all "
            "enable.idempotence=true linger.ms=1",
        )  # fmt: skip
    finally:
        delete_topic(targets, inventory, broker_host, BENCH_TOPIC)
    return replace(parse_summary(output), record_size=record_size)
