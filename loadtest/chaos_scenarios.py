"""The fault scenarios of `./lab chaos`: what each one breaks, where, and for how long.

Pure data and the figures a run is judged by, free of Locust, Ansible and Cassandra, so
the unit tests check them without a lab. loadtest.chaos runs them.

A scenario's fault is a playbook under playbooks/chaos/ (kill.yml, stop.yml, ...) run
with extra variables, or, for the load generator itself, done by the runner. Hosts are
chosen from the inventory's groups (never named here), so the scenarios run on any
inventory shaped like the lab's: two or more Cassandra nodes per DC, a broker and an app
node per region.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from loadtest.consistency_matrix import percentile_ms
from loadtest.targets import Targets

# Recovered: a window this long after the heal with no failed operation and the rate
# back to this share of the rate before the fault.
RECOVERY_WINDOW_S = 10.0
RECOVERY_RATE_SHARE = 0.9
OUTCOMES = ("sold", "declined", "failed")


@dataclass(frozen=True)
class Fault:
    """One playbook run: playbooks/chaos/<playbook> (or playbooks/<playbook>) with vars."""

    playbook: str
    extra_vars: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    name: str
    letter: str  # the fault list (a) to (h); (2) for region failover
    summary: str
    fault_s: float  # how long the fault lasts before heal.yml runs
    faults: tuple[Fault, ...] = ()  # run in order at the fault's start; empty: the runner's own
    kill_load: bool = False  # (h): the runner kills Locust instead
    # Load time set aside for faults that last as long as their playbook (fault_s 0).
    playbook_s: float = 0.0


def scenarios(targets: Targets) -> dict[str, Scenario]:
    """Every scenario, its hosts picked from the inventory's groups."""
    dcs = list(targets.cassandra_hosts_by_dc)
    first_dc = targets.cassandra_hosts_by_dc[dcs[0]] if dcs else []
    # The second node of a DC: the first is a seed, and the lab's other tests stop the second too.
    one_per_dc = [hosts[-1] for hosts in targets.cassandra_hosts_by_dc.values() if hosts]
    first_app = targets.app_hosts[:1]
    broker = targets.kafka_hosts[:1]
    gateway = ["payment_gateway"]

    def on(service: str, hosts: Sequence[str], playbook: str = "stop.yml") -> Fault:
        return Fault(playbook, {"chaos_service": service, "chaos_hosts": ",".join(hosts)})

    every = [
        Scenario("cassandra-kill", "a", f"kill -9 of Cassandra on {first_dc[-1:]}; systemd restarts it",
                 60, (on("cassandra", first_dc[-1:], "kill.yml"),)),
        Scenario("cassandra-one-per-dc", "b", f"Cassandra stopped on {one_per_dc}, one node in every DC",
                 60, (on("cassandra", one_per_dc),)),
        Scenario("region-cut", "c", f"the region of {first_app} cut off from the other regions for 60 s (nftables)",
                 60, (Fault("region_cut.yml", {"chaos_region_of": ",".join(first_app)}),)),
        Scenario("kafka-broker", "d", f"Kafka broker {broker} stopped", 60, (on("kafka", broker),)),
        Scenario("kafka-leader", "d", "the Kafka controller quorum's leader stopped", 60, (Fault("kafka_leader.yml"),)),
        Scenario("consumer-kill", "e", f"kill -9 of the consumer on {first_app}, mid-batch; systemd restarts it",
                 30, (on("checkout-consumer", first_app, "kill.yml"),)),
        Scenario("app-rolling", "f", "rolling redeploy of every app node (playbooks/app.yml)",
                 0, (Fault("../app.yml", {"checkout_app_rolling_restart": "true"}),), playbook_s=180),
        Scenario("dc-down", "2", f"every Cassandra node of the first DC {first_dc} stopped; its region's "
                 "statements fail over to the standby DC", 60, (on("cassandra", first_dc),)),
        Scenario("api-down", "2", f"the checkout API stopped on {first_app}; its tills fail over to another region's",
                 60, (on("checkout-api", first_app),)),
        Scenario("gateway-down", "g", "the sandbox payment gateway stopped for 30 s", 30,
                 (on("checkout-gateway", gateway),)),
        Scenario("locust-kill", "h", "the load generator killed (SIGKILL) mid-flight, started again after 5 s",
                 5, kill_load=True),
    ]  # fmt: skip
    return {s.name: s for s in every}


@dataclass(frozen=True)
class Op:
    """One checkout operation as the locustfile's ops log has it (times: Unix seconds)."""

    t0: float
    t1: float
    result: str  # sold, declined or failed
    key: str  # the checkout's Idempotency-Key ("" if it never got that far)
    invoice: str
    checkout_ms: float
    branch: str = ""


def parse_ops(lines: Iterable[str]) -> tuple[list[Op], set[str]]:
    """The operations and every Idempotency-Key sent (even those with no answer)."""
    import json

    ops: list[Op] = []
    keys: set[str] = set()
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # the last line of a process killed mid-write
        if record.get("e") == "pay":
            keys.add(record["key"])
        elif record.get("e") == "op":
            ops.append(
                Op(record["t0"], record["t1"], record["result"], record["key"], record["invoice"],
                   record["checkout_ms"], record.get("branch", ""))
            )  # fmt: skip
            if record["key"]:
                keys.add(record["key"])
    return ops, keys


@dataclass(frozen=True)
class Window:
    ops: int
    completed: int  # sold or declined
    failed: int
    availability: float  # completed / ops (1.0 when there were none)
    checkout_p99_ms: float  # the checkout at the till, retries included
    rate: float  # completed operations per second


def window(ops: Iterable[Op], start: float, end: float) -> Window:
    """The operations started in [start, end)."""
    inside = [op for op in ops if start <= op.t0 < end]
    completed = sum(op.result != "failed" for op in inside)
    return Window(
        ops=len(inside),
        completed=completed,
        failed=len(inside) - completed,
        availability=completed / len(inside) if inside else 1.0,
        checkout_p99_ms=percentile_ms([op.checkout_ms for op in inside if op.checkout_ms > 0], 0.99),
        rate=completed / (end - start) if end > start else 0.0,
    )


def recovery_s(ops: Sequence[Op], healed_at: float, baseline_rate: float, run_end: float) -> float | None:
    """Seconds from the heal to the start of the first window with no failed operation and
    the completion rate back to RECOVERY_RATE_SHARE of the baseline; None if none did."""
    wanted = RECOVERY_RATE_SHARE * baseline_rate * RECOVERY_WINDOW_S
    step = 1.0
    for i in range(math.floor(max(0.0, run_end - RECOVERY_WINDOW_S - healed_at) / step) + 1):
        start = healed_at + i * step
        end = start + RECOVERY_WINDOW_S
        ended = [op for op in ops if start <= op.t1 < end]
        failed = sum(op.result == "failed" for op in ended)
        if failed == 0 and len(ended) >= wanted:
            return start - healed_at
    return None
