"""Eventual consistency, measured: how long a write at LOCAL_ONE in one DC takes to be
visible from another DC, healthy and while a node that missed it comes back (hints).

    ./lab visibility [--writes 200] [--outage-writes 50]

- healthy: each write goes through a node of the first DC at LOCAL_ONE; right after its
  ack, a node of the last DC is polled at LOCAL_ONE until the row is there.
- returning node: the last DC's second node is stopped, rows are written as above, the
  node is started, and from the moment it is UN it is polled (as coordinator, at ONE, so
  it answers from its own copy when it has one) until each row is there: the time hints
  (or a read repair) take to bring it up to date.

Prints p50/p99/max per phase and writes loadtest/results/<date>-visibility.{md,json}.
Uses the consistency matrix's scratch keyspace and node control.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from cassandra import ConsistencyLevel
from cassandra.cluster import Cluster, NoHostAvailable, Session
from cassandra.query import SimpleStatement

from loadtest.consistency_matrix import KEYSPACE, drop, percentile_ms, prepare, session_on, stopped
from loadtest.targets import LAB_INVENTORY, REPO, from_inventory

RESULTS = REPO / "loadtest" / "results"
GIVE_UP_S = 120.0


def _statements() -> tuple[SimpleStatement, SimpleStatement]:
    insert = SimpleStatement(
        f"INSERT INTO {KEYSPACE}.kv (k, v) VALUES (%s, 1)", consistency_level=ConsistencyLevel.LOCAL_ONE
    )
    select = SimpleStatement(f"SELECT v FROM {KEYSPACE}.kv WHERE k = %s", consistency_level=ConsistencyLevel.ONE)
    return insert, select


def wait_visible(reader: Session, select: SimpleStatement, key: uuid.UUID, since: float) -> float:
    """Milliseconds from `since` until `reader` returns the row (polling), at most GIVE_UP_S."""
    while reader.execute(select, (key,)).one() is None:
        if time.perf_counter() - since > GIVE_UP_S:
            raise RuntimeError(f"row {key} not visible after {GIVE_UP_S:g} s")
        time.sleep(0.001)
    return (time.perf_counter() - since) * 1000


def summary(values: list[float]) -> dict[str, float]:
    return {
        "count": len(values),
        "p50_ms": percentile_ms(values, 0.5),
        "p99_ms": percentile_ms(values, 0.99),
        "max_ms": round(max(values), 1),
    }


def connect_when_ready(address: str, within_s: float = 60.0) -> tuple[Cluster, Session]:
    """A node just seen UN may open its CQL port a moment later."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return session_on(address)
        except NoHostAvailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def healthy(writer: Session, reader: Session, writes: int) -> list[float]:
    insert, select = _statements()
    delays = []
    for _ in range(writes):
        key = uuid.uuid4()
        writer.execute(insert, (key,))
        delays.append(wait_visible(reader, select, key, time.perf_counter()))
    return delays


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inventory", type=Path, default=LAB_INVENTORY)
    parser.add_argument("--writes", type=int, default=200, help="healthy writes, each polled until visible")
    parser.add_argument("--outage-writes", type=int, default=50, help="writes while the node is down")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not (1 <= args.writes <= 10_000 and 1 <= args.outage_writes <= 10_000):
        parser.error("--writes and --outage-writes must be between 1 and 10000")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    targets = from_inventory(args.inventory)
    dcs = list(targets.cassandra_by_dc)
    write_address = targets.cassandra_by_dc[dcs[0]][0]
    read_dc = dcs[-1]
    if len(targets.cassandra_by_dc[read_dc]) < 2:
        print(f"DC {read_dc} needs 2 nodes: one to stop, one that stays", file=sys.stderr)
        return 2
    returning_host, returning_address = targets.cassandra_hosts_by_dc[read_dc][1], targets.cassandra_by_dc[read_dc][1]
    started = datetime.now(UTC)
    prepare(targets)
    insert, select = _statements()
    try:
        write_cluster, writer = session_on(write_address)
        read_cluster, reader = session_on(targets.cassandra_by_dc[read_dc][0])
        try:
            phases = {"healthy": summary(healthy(writer, reader, args.writes))}
            print(f"healthy: {phases['healthy']}", flush=True)
            keys = []
            with stopped(targets, args.inventory, [returning_host]):
                for _ in range(args.outage_writes):
                    keys.append(uuid.uuid4())
                    writer.execute(insert, (keys[-1],))
            back = time.perf_counter()  # stopped() returns once the node is UN again
            return_cluster, returning = connect_when_ready(returning_address)
            try:
                delays = [wait_visible(returning, select, key, back) for key in keys]
            finally:
                return_cluster.shutdown()
            phases["returning node"] = summary(delays)
            print(f"returning node ({returning_host}), ms after it was UN: {phases['returning node']}", flush=True)
        finally:
            write_cluster.shutdown()
            read_cluster.shutdown()
    finally:
        drop(targets)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{started:%Y-%m-%d}-visibility"
    stem.with_suffix(".json").write_text(json.dumps({"started": started.isoformat(), "phases": phases}, indent=2))
    rows = "\n".join(
        f"| {name} | {p['count']} | {p['p50_ms']} | {p['p99_ms']} | {p['max_ms']} |" for name, p in phases.items()
    )
    stem.with_suffix(".md").write_text(
        f"# Time until a LOCAL_ONE write is visible in another DC, {started:%Y-%m-%d %H:%M} UTC\n\n"
        f"Written via {write_address} ({dcs[0]}), read in {read_dc}; the returning node is {returning_host}, "
        "timed from the moment it is UN.\n\n| phase | writes | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|\n"
        f"{rows}\n"
    )
    print(f"Results: {stem}.md, .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
