"""The consistency-level matrix: every write level x every read level, healthy, with one
node down and with one DC down, measured on the running cluster and judged against the
quorum arithmetic of its replication (loadtest/quorum.py).

    ./lab consistency [--ops 20] [--states healthy,node-down,dc-down]

Writes go through one node of the first DC, reads through one node of the last DC, with no
driver retry: each answer is the cluster's own. Every op writes a new row and reads it
back at once; a read that does not find it is stale. A scratch keyspace replicated like
the sales keyspace (each DC's node count, at most 3) holds the rows and is dropped after.
"Node down" stops the writing DC's second node; "DC down" stops every node of a DC in the
middle. Stopped nodes are always started again, and the run waits until they are up.
Prints the matrix and writes loadtest/results/<date>-consistency.{md,json}; exits 1 when a
cell contradicts the arithmetic.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from cassandra import ConsistencyLevel, DriverException
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import FallthroughRetryPolicy, WhiteListRoundRobinPolicy
from cassandra.query import SimpleStatement
from checkout.stats import percentile

from loadtest import quorum
from loadtest.db_profile import derived_factors
from loadtest.remote import module, on_host
from loadtest.targets import LAB_INVENTORY, REPO, Targets, from_inventory

RESULTS = REPO / "loadtest" / "results"
KEYSPACE = "checkout_matrix"
CQL_PORT = 9042
STATES = ("healthy", "node-down", "dc-down")
# A cell the arithmetic says is served must answer at least this share of its ops: a
# 2-core host running 13 VMs times out now and then, which is not a refusal.
SERVED_SHARE = 0.95
# Schema changes wait for every node to agree; the ops themselves time out after 5 s.
DDL_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Cell:
    state: str
    write: str
    read: str
    ops: int
    ok: int
    stale: int
    write_p50_ms: float
    write_p99_ms: float
    read_p50_ms: float
    read_p99_ms: float
    errors: dict[str, int]
    served: bool  # predicted: the write and the read levels both have their replicas
    never_stale: bool  # predicted: every acked write overlaps every answered read

    @property
    def verdict(self) -> str:
        if not self.served:
            return "ok" if self.ok == 0 else "served though the arithmetic says it cannot be"
        if self.ok < SERVED_SHARE * self.ops:
            return f"refused {self.ops - self.ok} of {self.ops} though its replicas are up"
        if self.never_stale and self.stale:
            return f"{self.stale} stale reads though write and read always overlap"
        return "ok"


def percentile_ms(values: list[float], share: float) -> float:
    """The value at `share` of the sorted values, to 0.1 ms; 0 when there are none."""
    return round(percentile(values, share), 1)


def session_on(
    address: str, keyspace: str | None = None, level: int = ConsistencyLevel.LOCAL_ONE, timeout_s: float = 5
) -> tuple[Cluster, Session]:
    """A session whose only coordinator is `address`, rethrowing every server error."""
    profile = ExecutionProfile(
        load_balancing_policy=WhiteListRoundRobinPolicy([address]),
        retry_policy=FallthroughRetryPolicy(),
        consistency_level=level,
        request_timeout=timeout_s,
    )
    cluster = Cluster([address], port=CQL_PORT, execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                      connect_timeout=15, protocol_version=5)  # fmt: skip
    return cluster, cluster.connect(keyspace)


def measure_cell(
    writer: Session, reader: Session, state: str, write: str, read: str, ops: int, *, served: bool, never_stale: bool
) -> Cell:
    insert = SimpleStatement(
        f"INSERT INTO {KEYSPACE}.kv (k, v) VALUES (%s, %s)", consistency_level=ConsistencyLevel.name_to_value[write]
    )
    select = SimpleStatement(
        f"SELECT v FROM {KEYSPACE}.kv WHERE k = %s", consistency_level=ConsistencyLevel.name_to_value[read]
    )
    ok = stale = 0
    writes: list[float] = []
    reads: list[float] = []
    errors: dict[str, int] = {}
    for n in range(ops):
        key = uuid.uuid4()
        try:
            started = time.perf_counter()
            writer.execute(insert, (key, n))
            writes.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            row = reader.execute(select, (key,)).one()
            reads.append((time.perf_counter() - started) * 1000)
        except DriverException as error:
            kind = type(error).__name__
            errors[kind] = errors.get(kind, 0) + 1
            continue
        ok += 1
        stale += row is None or row.v != n
    w50, w99 = percentile_ms(writes, 0.5), percentile_ms(writes, 0.99)
    r50, r99 = percentile_ms(reads, 0.5), percentile_ms(reads, 0.99)
    return Cell(state, write, read, ops, ok, stale, w50, w99, r50, r99, errors, served, never_stale)


def measure_state(targets: Targets, state: str, down: list[str], ops: int) -> list[Cell]:
    """Every cell for one state of the cluster (nodes `down` already stopped)."""
    dcs = list(targets.cassandra_by_dc)
    write_dc, read_dc = dcs[0], dcs[-1]
    factors = derived_factors(targets.cassandra_by_dc)
    # Exact while each DC's factor is its node count (the lab): every node holds every row.
    alive = {
        (dc, n)
        for dc, hosts in targets.cassandra_hosts_by_dc.items()
        for n, host in enumerate(hosts[: factors[dc]])
        if host not in down
    }
    write_cluster, writer = session_on(targets.cassandra_by_dc[write_dc][0])
    read_cluster, reader = session_on(targets.cassandra_by_dc[read_dc][0])
    try:
        return [
            measure_cell(
                writer,
                reader,
                state,
                write,
                read,
                ops,
                served=quorum.available(write, alive, factors, write_dc)
                and quorum.available(read, alive, factors, read_dc),
                never_stale=quorum.never_stale(write, read, factors, write_dc, read_dc, alive),
            )
            for write in quorum.WRITE_LEVELS
            for read in quorum.READ_LEVELS
        ]
    finally:
        write_cluster.shutdown()
        read_cluster.shutdown()


def nodes_down_for(targets: Targets, state: str) -> list[str]:
    hosts = list(targets.cassandra_hosts_by_dc.values())
    if state == "healthy":
        return []
    if state == "node-down":
        return hosts[0][1:2]
    if len(hosts) < 3:
        raise SystemExit("dc-down needs 3 DCs: the writing and the reading DC stay up")
    return hosts[1]


def _status(inventory: Path, peer: str, address: str) -> str | None:
    output = on_host(inventory, peer, "nodetool status")
    line = next((line for line in output.splitlines() if f" {address} " in f" {line} "), None)
    return line.split()[0] if line else None


def wait_status(targets: Targets, inventory: Path, peer: str, hosts: list[str], wanted: str, within_s: float) -> None:
    addresses = {host: address for dc in targets.cassandra_hosts_by_dc for host, address in
                 zip(targets.cassandra_hosts_by_dc[dc], targets.cassandra_by_dc[dc], strict=True)}  # fmt: skip
    deadline = time.monotonic() + within_s
    while any(_status(inventory, peer, addresses[h]) != wanted for h in hosts):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{', '.join(hosts)} not {wanted} as {peer} sees them within {within_s:g} s")
        time.sleep(2)


@contextmanager
def stopped(targets: Targets, inventory: Path, hosts: list[str]) -> Iterator[None]:
    peer = next(iter(targets.cassandra_hosts_by_dc.values()))[0]
    pattern = ":".join(hosts)
    try:
        if hosts:
            module(inventory, pattern, "ansible.builtin.systemd_service", "name=cassandra state=stopped")
            wait_status(targets, inventory, peer, hosts, "DN", within_s=120)
        yield
    finally:
        if hosts:
            module(inventory, pattern, "ansible.builtin.systemd_service", "name=cassandra state=started")
            wait_status(targets, inventory, peer, hosts, "UN", within_s=300)


def prepare(targets: Targets) -> None:
    factors = derived_factors(targets.cassandra_by_dc)
    replication = ", ".join(f"'{dc}': {rf}" for dc, rf in factors.items())
    cluster, session = session_on(next(iter(targets.cassandra_by_dc.values()))[0])
    try:
        session.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {KEYSPACE} WITH replication = "
            f"{{'class': 'NetworkTopologyStrategy', {replication}}}",
            timeout=DDL_TIMEOUT_S,
        )
        # Scratch rows: they expire within the hour even if the drop below never runs.
        session.execute(
            f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.kv (k uuid PRIMARY KEY, v int) WITH default_time_to_live = 3600",
            timeout=DDL_TIMEOUT_S,
        )
    finally:
        cluster.shutdown()


def drop(targets: Targets) -> None:
    cluster, session = session_on(next(iter(targets.cassandra_by_dc.values()))[0])
    try:
        session.execute(f"DROP KEYSPACE IF EXISTS {KEYSPACE}", timeout=DDL_TIMEOUT_S)
    finally:
        cluster.shutdown()


def render(cells: list[Cell]) -> str:
    lines = [
        f"{'state':<10} {'write':<12} {'read':<12} {'ok':>7} {'stale':>6} {'w p50/p99':>12} {'r p50/p99':>12}  "
        f"{'predicted':<18} verdict"
    ]
    for c in cells:
        predicted = ("served" if c.served else "refused") + (", never stale" if c.never_stale and c.served else "")
        lines.append(
            f"{c.state:<10} {c.write:<12} {c.read:<12} {c.ok:>3}/{c.ops:<3} {c.stale:>6} "
            f"{c.write_p50_ms:>5.1f}/{c.write_p99_ms:<6.1f} {c.read_p50_ms:>5.1f}/{c.read_p99_ms:<6.1f}  "
            f"{predicted:<18} {c.verdict}"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inventory", type=Path, default=LAB_INVENTORY)
    parser.add_argument("--ops", type=int, default=20, help="writes (each read back) per cell")
    parser.add_argument("--states", default=",".join(STATES), help=f"comma-separated, of {', '.join(STATES)}")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.states = args.states.split(",")
    unknown = [s for s in args.states if s not in STATES]
    if unknown:
        parser.error(f"unknown state(s) {', '.join(unknown)}: choose from {', '.join(STATES)}")
    if not 1 <= args.ops <= 1000:
        parser.error("--ops must be between 1 and 1000")
    return args


def run(targets: Targets, inventory: Path, states: list[str], ops: int) -> list[Cell]:
    prepare(targets)
    cells: list[Cell] = []
    try:
        for state in states:
            down = nodes_down_for(targets, state)
            with stopped(targets, inventory, down):
                cells += measure_state(targets, state, down, ops)
            print(render([c for c in cells if c.state == state]), flush=True)
    finally:
        drop(targets)
    return cells


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    targets = from_inventory(args.inventory)
    started = datetime.now(UTC)
    cells = run(targets, args.inventory, args.states, args.ops)
    wrong = [c for c in cells if c.verdict != "ok"]
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{started:%Y-%m-%d}-consistency"
    factors = derived_factors(targets.cassandra_by_dc)
    stem.with_suffix(".json").write_text(
        json.dumps({"started": started.isoformat(), "factors": factors, "cells": [asdict(c) for c in cells]}, indent=2)
    )
    stem.with_suffix(".md").write_text(
        f"# Consistency-level matrix, {started:%Y-%m-%d %H:%M} UTC\n\n`./lab consistency --ops {args.ops}`; "
        f"replication {factors}; writes via {next(iter(factors))}, reads via {list(factors)[-1]}.\n\n"
        f"```\n{render(cells)}\n```\n\n{len(cells) - len(wrong)} of {len(cells)} cells as the arithmetic predicts.\n"
    )
    print(f"{len(cells) - len(wrong)} of {len(cells)} cells as the arithmetic predicts. Results: {stem}.md, .json")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
