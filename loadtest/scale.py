"""Scale a DC's Cassandra out by one node and back in, on the running lab, as an operator
would: an inventory edit, site.yml, the maintenance playbooks; rows counted at each step.

    ./lab scale [--dc Yangon] [--results loadtest/results/scale]

Out: a copy of the lab inventory (inventories/lab-scaled/, not committed) gains a node
in the DC (loadtest.scale_inventory). playbooks/lab_up.yml starts its VM and site.yml
deploys it: the node bootstraps, streaming the ranges it takes over, and the DC's
replication factors follow its node count (capped at 3). cassandra_repair.yml then fills
the replicas a higher factor added, and cassandra_cleanup.yml drops from the old nodes
what they handed over.

In: the node is marked cassandra_decommission and site.yml lowers the factors again;
cassandra_decommission.yml streams its data to the others and stops it; the host leaves
the inventory, its VM is removed, and site.yml runs with the lab's own inventory.

Before and after each phase it records the DC's `nodetool status` and, for every table
of the shared keyspace and the region keyspaces, the rows in every DC that holds them
(LOCAL_QUORUM, primary keys) with a digest: equal digests mean the same rows. Run it on
a quiet lab (no load): the counts must not move. Prints a table, writes it to
<results>/<date>-scale.md and .json, and exits 1 when a count or digest changed (2 when
a step failed; the lab is then left as the step left it, and ./lab down removes the VM).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from cassandra.query import SimpleStatement
from checkout.domain import region_keyspace

from loadtest.raw_cassandra import connect
from loadtest.remote import PlaybookError, module, on_host, play
from loadtest.run import RESULTS
from loadtest.scale_inventory import ScaleError, marked_to_leave, new_cassandra_node, with_node, without
from loadtest.targets import REPO, InventoryError, Targets, from_inventory
from loadtest.verify import KEYSPACE

LAB_HOSTS = REPO / "inventories" / "lab" / "hosts.yml"
# Two levels under the repo, as the lab's: group_vars/all.yml finds .lab/ from inventory_dir.
SCALED = REPO / "inventories" / "lab-scaled"
SITE = REPO / "site.yml"
PLAYBOOKS = REPO / "playbooks"
COMMITTED_RESULTS = REPO / "loadtest" / "results" / "scale"
HEADER = "# Written by ./lab scale (loadtest/scale.py): the lab inventory with a DC scaled. Not committed.\n"


@dataclass(frozen=True)
class Count:
    table: str  # keyspace.table
    dc: str
    rows: int
    digest: str


@dataclass
class Snapshot:
    label: str
    counts: list[Count]
    ring: list[str]  # the DC's lines of nodetool status


@dataclass
class Step:
    name: str
    seconds: float


@dataclass
class Run:
    dc: str
    node: str
    address: str
    steps: list[Step] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    error: str | None = None

    @property
    def changed(self) -> list[str]:
        """Every (table, DC) whose rows or digest differ from the first snapshot's."""
        if not self.snapshots:
            return []
        first = {(c.table, c.dc): c for c in self.snapshots[0].counts}
        return sorted(
            f"{c.table} in {c.dc} at '{s.label}': {first[(c.table, c.dc)].rows} -> {c.rows} rows"
            for s in self.snapshots[1:]
            for c in s.counts
            if (c.table, c.dc) in first
            and (c.rows, c.digest) != (first[(c.table, c.dc)].rows, first[(c.table, c.dc)].digest)
        )

    @property
    def passed(self) -> bool:
        return self.error is None and len(self.snapshots) == 3 and not self.changed


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
                    keys = sorted(repr(tuple(row)) for row in session.execute(statement))
                    digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:12]
                    counts.append(Count(f"{name}.{table_name}", dc, len(keys), digest))
        finally:
            cluster.shutdown()
    return counts


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


def remove_vm(name: str, log: Path) -> None:
    """The lab VM gone (a real node would be retired by its owner instead)."""
    output = module(LAB_HOSTS, "localhost", "containers.podman.podman_container", f"name={name} state=absent")
    with log.open("a") as out:
        out.write(output)


def scale(dc: str, log: Path, say: Callable[[str], None]) -> Run:
    lab_data = yaml.safe_load(LAB_HOSTS.read_text())
    node = new_cassandra_node(lab_data, dc)
    run = Run(dc, node.name, node.address)
    grown = with_node(lab_data, node)

    def step(name: str, action: Callable[[], None]) -> None:
        say(f"{name} ...")
        started = time.perf_counter()
        action()
        run.steps.append(Step(name, round(time.perf_counter() - started, 1)))
        say(f"{name}: {run.steps[-1].seconds:.0f} s")

    def snapshot(label: str, inventory: Path) -> None:
        targets = from_inventory(inventory)
        run.snapshots.append(Snapshot(label, count_rows(targets), ring(inventory, targets, dc)))
        counts = run.snapshots[-1].counts
        say(f"{label}: {sum(c.rows for c in counts)} rows over {len(counts)} tables x DCs")

    def playbook(name: str, inventory: Path, path: Path) -> None:
        step(name, lambda: play(inventory, path, {}, log))

    try:
        snapshot("before", LAB_HOSTS)
        scaled = write_inventory(grown)
        playbook(f"out: lab_up.yml starts {node.name} ({node.address})", scaled, PLAYBOOKS / "lab_up.yml")
        playbook(f"out: site.yml, {node.name} joins {dc}", scaled, SITE)
        playbook("out: cassandra_repair.yml", scaled, PLAYBOOKS / "cassandra_repair.yml")
        playbook("out: cassandra_cleanup.yml", scaled, PLAYBOOKS / "cassandra_cleanup.yml")
        snapshot(f"{dc} +1 node", scaled)
        scaled = write_inventory(marked_to_leave(grown, node.name))
        playbook(f"in: site.yml, {node.name} marked cassandra_decommission", scaled, SITE)
        playbook("in: cassandra_decommission.yml", scaled, PLAYBOOKS / "cassandra_decommission.yml")
        write_inventory(without(grown, node.name))
        step(f"in: {node.name}'s VM removed", lambda: remove_vm(node.name, log))
        playbook("in: site.yml with the lab inventory", LAB_HOSTS, SITE)
        snapshot(f"{dc} back to its nodes", LAB_HOSTS)
    except (PlaybookError, RuntimeError, OSError) as error:
        run.error = str(error)
    return run


def render(run: Run) -> str:
    labels = [s.label for s in run.snapshots]
    rows = [["table", "DC", *labels]]
    by_key: dict[tuple[str, str], list[str]] = {}
    for index, snap in enumerate(run.snapshots):
        for c in snap.counts:
            by_key.setdefault((c.table, c.dc), ["-"] * len(labels))[index] = f"{c.rows} {c.digest}"
    rows += [[table, dc, *cells] for (table, dc), cells in sorted(by_key.items())]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    table = "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows)
    steps = "\n".join(f"{s.seconds:7.0f} s  {s.name}" for s in run.steps)
    rings = "\n\n".join(f"{s.label}:\n" + "\n".join(f"  {line}" for line in s.ring) for s in run.snapshots)
    verdict = (
        "PASS: every table holds the same rows in every DC"
        if run.passed
        else "FAIL: " + (run.error or "; ".join(run.changed) or "a snapshot is missing")
    )
    return (
        f"Scale {run.dc} out by {run.node} ({run.address}) and back in\n\n"
        f"Steps:\n{steps}\n\nRows (primary keys) and digest, LOCAL_QUORUM in each DC:\n{table}\n\n"
        f"nodetool status of {run.dc} (state, address, load):\n{rings}\n\n{verdict}"
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
        new_cassandra_node(yaml.safe_load(LAB_HOSTS.read_text()), args.dc)
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
