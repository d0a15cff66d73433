"""Scale a region out and back in on the running lab, as an operator would: an inventory
edit, site.yml, the maintenance playbooks; the data counted at every step.

    ./lab scale [--dc Yangon] [--results loadtest/results/scale]

Out: a copy of the lab inventory (inventories/lab-scaled/, not committed) gains a
Cassandra node and a Kafka broker in the region (loadtest.scale_inventory).
playbooks/lab_up.yml starts their VMs and site.yml deploys them: the node bootstraps,
streaming the ranges it takes over, and the DC's replication factors follow its node
count (capped at 3); the broker joins as a broker only. cassandra_repair.yml fills the
replicas a higher factor added, cassandra_cleanup.yml drops from the old nodes what they
handed over, and kafka_reassign.yml moves partitions onto the new broker.

In: both are marked to leave (cassandra_decommission, kafka_decommission) and site.yml
lowers the factors again; cassandra_decommission.yml streams the node's data to the
others and stops it; kafka_reassign.yml moves the broker's replicas off and
kafka_decommission.yml stops and unregisters it; the hosts leave the inventory, their
VMs are removed, and site.yml runs with the lab's own inventory.

Before and after each phase it records the DC's `nodetool status`, the replicas each
broker holds, and the data: for every table of the shared and region keyspaces, the rows
in every DC that holds them (LOCAL_QUORUM, primary keys), and for every topic, its
records (partition, offset, key, value); each with a digest, equal digests meaning the
same data. Run it on a quiet lab (no load): nothing may move. Prints a table, writes it
to <results>/<date>-scale.md and .json, and exits 1 when a count or digest changed (2
when a step failed; the lab is then left as the step left it, and ./lab down removes the
added VMs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from cassandra.query import SimpleStatement
from checkout.domain import region_keyspace
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from loadtest.raw_cassandra import connect
from loadtest.remote import PlaybookError, module, on_host, play
from loadtest.run import RESULTS
from loadtest.scale_inventory import (
    NewNode,
    ScaleError,
    marked_to_leave,
    new_cassandra_node,
    new_kafka_broker,
    with_node,
)
from loadtest.targets import REPO, InventoryError, Targets, from_inventory
from loadtest.verify import KEYSPACE

LAB_HOSTS = REPO / "inventories" / "lab" / "hosts.yml"
# Two levels under the repo, as the lab's: group_vars/all.yml finds .lab/ from inventory_dir.
SCALED = REPO / "inventories" / "lab-scaled"
SITE = REPO / "site.yml"
PLAYBOOKS = REPO / "playbooks"
COMMITTED_RESULTS = REPO / "loadtest" / "results" / "scale"
READ_WITHIN_S = 300.0  # a topic's records, from its start
HEADER = "# Written by ./lab scale (loadtest/scale.py): the lab inventory with a region scaled. Not committed.\n"


@dataclass(frozen=True)
class Count:
    data: str  # keyspace.table, or topic
    where: str  # the DC, or "kafka"
    items: int  # rows, or records
    digest: str


@dataclass
class Snapshot:
    label: str
    counts: list[Count]
    ring: list[str]  # the DC's lines of nodetool status
    broker_replicas: dict[str, int]  # replicas per broker (node ID), every topic


@dataclass
class Step:
    name: str
    seconds: float


@dataclass
class Run:
    dc: str
    added: list[str]  # name (address)
    steps: list[Step] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    error: str | None = None

    @property
    def changed(self) -> list[str]:
        """Every count whose items or digest differ from the first snapshot's."""
        if not self.snapshots:
            return []
        first = {(c.data, c.where): c for c in self.snapshots[0].counts}
        return sorted(
            f"{c.data} in {c.where} at '{s.label}': {first[(c.data, c.where)].items} -> {c.items}"
            for s in self.snapshots[1:]
            for c in s.counts
            if (c.data, c.where) in first
            and (c.items, c.digest) != (first[(c.data, c.where)].items, first[(c.data, c.where)].digest)
        )

    @property
    def passed(self) -> bool:
        return self.error is None and len(self.snapshots) == 3 and not self.changed


def _digest(items: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(items)).encode()).hexdigest()[:12]


def keyspaces(targets: Targets) -> list[str]:
    return [KEYSPACE, *(region_keyspace(KEYSPACE, dc) for dc in sorted(set(targets.dc_by_branch.values())))]


def count_rows(targets: Targets) -> list[Count]:
    """Rows (primary keys) of every table of the checkout keyspaces, in each DC holding them."""
    counts = []
    for dc, addresses in sorted(targets.cassandra_by_dc.items()):
        cluster = connect(dc, addresses, "LOCAL_QUORUM")
        try:
            session = cluster.connect()
            for name in keyspaces(targets):
                keyspace = cluster.metadata.keyspaces[name]
                factors = getattr(keyspace.replication_strategy, "dc_replication_factors", {})
                if int(factors.get(dc, 0)) == 0:
                    continue
                for table_name, table in sorted(keyspace.tables.items()):
                    columns = ", ".join(c.name for c in table.primary_key)
                    statement = SimpleStatement(f"SELECT {columns} FROM {name}.{table_name}", fetch_size=5000)
                    keys = [repr(tuple(row)) for row in session.execute(statement)]
                    counts.append(Count(f"{name}.{table_name}", dc, len(keys), _digest(keys)))
        finally:
            cluster.shutdown()
    return counts


def count_records(bootstrap: list[str]) -> tuple[list[Count], dict[str, int]]:
    """Every record of every topic but Kafka's own, read from its start; replicas per broker."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=30_000)
    try:
        described = admin.describe_topics()
        replicas = Counter(
            str(replica)
            for topic in described
            for partition in topic["partitions"]
            for replica in partition["replica_nodes"]
        )
        counts = []
        for topic in sorted(t["name"] for t in described if not t["is_internal"]):
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            ends = consumer.end_offsets(partitions)
            records: list[str] = []
            deadline = time.monotonic() + READ_WITHIN_S
            while any(consumer.position(tp) < ends[tp] for tp in partitions):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"topic {topic}: not read to its end within {READ_WITHIN_S:.0f} s")
                for batch in consumer.poll(timeout_ms=2000).values():
                    records += [
                        f"{r.partition}|{r.offset}|{r.key!r}|{r.value!r}"
                        for r in batch
                        if r.offset < ends[TopicPartition(r.topic, r.partition)]
                    ]
            counts.append(Count(topic, "kafka", len(records), _digest(records)))
        return counts, dict(sorted(replicas.items()))
    finally:
        consumer.close()
        admin.close()


def ring(inventory: Path, targets: Targets, dc: str) -> list[str]:
    """The DC's node lines of `nodetool status`, asked of its first node."""
    output = on_host(inventory, targets.cassandra_hosts_by_dc[dc][0], "nodetool status")
    lines, inside = [], False
    for line in output.splitlines():
        if line.startswith("Datacenter:"):
            inside = line.split(":", 1)[1].strip() == dc
        elif inside and line[:2] in {"UN", "UL", "UJ", "UM", "DN", "DL", "DJ", "DM"}:
            lines.append(" ".join(line.split()[:4]))  # state, address, load and its unit
    return lines


def write_inventory(data: dict[str, Any]) -> Path:
    SCALED.mkdir(parents=True, exist_ok=True)
    group_vars = SCALED / "group_vars"
    if not group_vars.exists():
        group_vars.symlink_to(Path("..") / "lab" / "group_vars")
    hosts = SCALED / "hosts.yml"
    hosts.write_text(HEADER + yaml.safe_dump(data, sort_keys=False))
    return hosts


def remove_vms(names: list[str], log: Path) -> None:
    """The lab VMs gone (real machines would be retired by their owner instead)."""
    for name in names:
        output = module(LAB_HOSTS, "localhost", "containers.podman.podman_container", f"name={name} state=absent")
        with log.open("a") as out:
            out.write(output)


def new_nodes(data: dict[str, Any], dc: str) -> tuple[NewNode, NewNode]:
    node = new_cassandra_node(data, dc)
    return node, new_kafka_broker(data, dc, [node.address])


def scale(dc: str, log: Path, say: Callable[[str], None]) -> Run:
    lab_data = yaml.safe_load(LAB_HOSTS.read_text())
    node, broker = new_nodes(lab_data, dc)
    run = Run(dc, [f"{n.name} ({n.address})" for n in (node, broker)])
    grown = with_node(with_node(lab_data, node), broker)
    leaving = marked_to_leave(marked_to_leave(grown, node.name), broker.name, "kafka")

    def step(name: str, action: Callable[[], None]) -> None:
        say(f"{name} ...")
        started = time.perf_counter()
        action()
        run.steps.append(Step(name, round(time.perf_counter() - started, 1)))
        say(f"{name}: {run.steps[-1].seconds:.0f} s")

    def playbook(name: str, inventory: Path, path: Path) -> None:
        step(name, lambda: play(inventory, path, {}, log))

    def snapshot(label: str, inventory: Path) -> None:
        targets = from_inventory(inventory)
        records, replicas = count_records(targets.kafka_bootstrap)
        run.snapshots.append(Snapshot(label, count_rows(targets) + records, ring(inventory, targets, dc), replicas))
        say(f"{label}: {sum(c.items for c in run.snapshots[-1].counts)} rows and records counted")

    try:
        snapshot("before", LAB_HOSTS)
        scaled = write_inventory(grown)
        playbook(f"out: lab_up.yml starts {node.name} and {broker.name}", scaled, PLAYBOOKS / "lab_up.yml")
        playbook(f"out: site.yml, {node.name} joins {dc}, {broker.name} the brokers", scaled, SITE)
        playbook("out: cassandra_repair.yml", scaled, PLAYBOOKS / "cassandra_repair.yml")
        playbook("out: cassandra_cleanup.yml", scaled, PLAYBOOKS / "cassandra_cleanup.yml")
        playbook(f"out: kafka_reassign.yml onto {broker.name}", scaled, PLAYBOOKS / "kafka_reassign.yml")
        snapshot(f"{dc} +{node.name} +{broker.name}", scaled)
        scaled = write_inventory(leaving)
        playbook("in: site.yml, both marked to leave", scaled, SITE)
        playbook(f"in: cassandra_decommission.yml {node.name}", scaled, PLAYBOOKS / "cassandra_decommission.yml")
        playbook(f"in: kafka_reassign.yml off {broker.name}", scaled, PLAYBOOKS / "kafka_reassign.yml")
        playbook(f"in: kafka_decommission.yml {broker.name}", scaled, PLAYBOOKS / "kafka_decommission.yml")
        names = [node.name, broker.name]
        step(f"in: the VMs of {' and '.join(names)} removed", lambda: remove_vms(names, log))
        playbook("in: site.yml with the lab inventory", LAB_HOSTS, SITE)
        snapshot(f"{dc} as before", LAB_HOSTS)
    except (PlaybookError, RuntimeError, OSError) as error:
        run.error = str(error)
    return run


def render(run: Run) -> str:
    labels = [s.label for s in run.snapshots]
    rows = [["data", "where", *labels]]
    by_key: dict[tuple[str, str], list[str]] = {}
    for index, snap in enumerate(run.snapshots):
        for c in snap.counts:
            by_key.setdefault((c.data, c.where), ["-"] * len(labels))[index] = f"{c.items} {c.digest}"
    rows += [[data, where, *cells] for (data, where), cells in sorted(by_key.items())]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    table = "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows)
    steps = "\n".join(f"{s.seconds:7.0f} s  {s.name}" for s in run.steps)
    rings = "\n\n".join(
        f"{s.label}:\n"
        + "\n".join(f"  {line}" for line in s.ring)
        + "\n  replicas per broker: "
        + ", ".join(f"{b}: {n}" for b, n in s.broker_replicas.items())
        for s in run.snapshots
    )
    verdict = (
        "PASS: every table and topic holds the same data"
        if run.passed
        else "FAIL: " + (run.error or "; ".join(run.changed) or "a snapshot is missing")
    )
    return (
        f"Scale {run.dc} out by {' and '.join(run.added)}, then back in\n\n"
        f"Steps:\n{steps}\n\nRows (Cassandra, LOCAL_QUORUM in each DC) or records (Kafka), and digest:\n{table}\n\n"
        f"nodetool status of {run.dc} (state, address, load), and Kafka:\n{rings}\n\n{verdict}"
    )


def save(run: Run, results: Path, command: str) -> Path:
    results.mkdir(parents=True, exist_ok=True)
    stem = results / f"{datetime.now(UTC):%Y-%m-%d}-scale"
    stem.with_suffix(".json").write_text(json.dumps({"command": command, **asdict(run)}, indent=2))
    stem.with_suffix(".md").write_text(f"# Scale out and in\n\n    {command}\n\n```\n{render(run)}\n```\n")
    return stem.with_suffix(".md")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dc", default="Yangon", help="the DC (region) to scale out and in")
    parser.add_argument("--results", type=Path, default=COMMITTED_RESULTS, help="where the dated results go")
    args = parser.parse_args(argv)
    try:
        lab = from_inventory(LAB_HOSTS)
        if args.dc not in lab.cassandra_by_dc:
            parser.error(f"--dc {args.dc}: the lab's DCs are {', '.join(sorted(lab.cassandra_by_dc))}")
        new_nodes(yaml.safe_load(LAB_HOSTS.read_text()), args.dc)
    except (InventoryError, ScaleError) as error:
        print(f"scale: {error}", file=sys.stderr)
        return 2
    log = RESULTS / "scale.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"Playbook output goes to {log}", flush=True)
    run = scale(args.dc, log, lambda line: print(line, flush=True))
    print(render(run))
    command = "./lab scale " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"Saved {save(run, args.results, command.strip())}")
    if run.error:
        return 2
    return 0 if run.passed else 1


if __name__ == "__main__":
    sys.exit(main())
