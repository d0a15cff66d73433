"""Repair on the lab (playbooks/cassandra_repair.yml): a node kept down past the hint
window comes back without the rows written meanwhile, and holds every one of them after
the playbook.

The probe keyspace has one replica in Yangon and one in Naypyitaw, so each row lives on
exactly one Naypyitaw node, and a LOCAL_ONE read in Naypyitaw reads that node and no
other: what it returns is what the node holds. The hint window of the coordinators is
shortened with `nodetool setmaxhintwindow` for the outage (and put back after), which is
what an outage longer than the real 3 hours does: the coordinators stop keeping hints.

About 2.5 minutes (a node stopped and started, six nodes repaired in turn): CI leaves it
out for its time budget; `./lab test` runs it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from cassandra import ConsistencyLevel

from .conftest import FIGURES
from .lab import Inventory, play, ssh, wait_back, wait_status

KEYSPACE = "repair_probe"
DOWN_NODE = "cass-c2"
WRITER_DC, READER_DC = "Yangon", "Naypyitaw"
ROWS = 300
# Cassandra's default max_hint_window (3 h), restored after the outage.
HINT_WINDOW_MS = 10_800_000
SHORT_WINDOW_MS = 1_000


def _hint_window(addresses: list[str], ms: int) -> None:
    for address in addresses:
        done = ssh(address, f"nodetool setmaxhintwindow {ms}", timeout_s=60)
        assert done.returncode == 0, done.stderr


def _held(session: Any, ids: list[int]) -> int:
    """How many of `ids` the session's DC returns at LOCAL_ONE (its one replica of each)."""
    statement = session.prepare(f"SELECT id FROM {KEYSPACE}.rows WHERE id = ?")
    statement.consistency_level = ConsistencyLevel.LOCAL_ONE
    return sum(1 for i in ids if session.execute(statement, (i,)).one() is not None)


@pytest.fixture(scope="module")
def probe(dc_sessions: dict[str, Any]) -> Iterator[tuple[Any, Any]]:
    """The probe keyspace, and the sessions of its two DCs (writer, reader)."""
    writer, reader = dc_sessions[WRITER_DC], dc_sessions[READER_DC]
    writer.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {KEYSPACE} WITH replication = "
        f"{{'class': 'NetworkTopologyStrategy', '{WRITER_DC}': 1, '{READER_DC}': 1}}"
    )
    writer.execute(f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.rows (id int PRIMARY KEY, note text)")
    assert writer.cluster.control_connection.wait_for_schema_agreement(wait_time=60)
    try:
        yield writer, reader
    finally:
        writer.execute(f"DROP KEYSPACE IF EXISTS {KEYSPACE}")


@pytest.mark.outside_ci
def test_a_node_down_past_the_hint_window_holds_every_row_after_the_repair(
    lab: Inventory, probe: tuple[Any, Any]
) -> None:
    writer, reader = probe
    down = lab.address(DOWN_NODE)
    peer = next(a for a in lab.cassandra_by_dc()[READER_DC] if a != down)
    coordinators = [a for dc, addresses in lab.cassandra_by_dc().items() for a in addresses if a != down]
    insert = writer.prepare(f"INSERT INTO {KEYSPACE}.rows (id, note) VALUES (?, 'written while down')")
    insert.consistency_level = ConsistencyLevel.LOCAL_ONE

    _hint_window(coordinators, SHORT_WINDOW_MS)
    try:
        stopped = ssh(down, "systemctl stop cassandra", timeout_s=180)
        assert stopped.returncode == 0, stopped.stderr
        wait_status(peer, down, "DN", 60)
        time.sleep(3 * SHORT_WINDOW_MS / 1000)  # past the window: no coordinator keeps a hint now
        for i in range(ROWS):
            writer.execute(insert, (i,))
    finally:
        _hint_window(coordinators, HINT_WINDOW_MS)
        ssh(down, "systemctl start cassandra", timeout_s=180)
    back_s = wait_back(peer, down, 180)

    # The rows whose Naypyitaw replica is the node that was down.
    metadata = reader.cluster.metadata  # int partition keys route as 4 big-endian bytes
    own = [
        i
        for i in range(ROWS)
        if any(host.address == down for host in metadata.get_replicas(KEYSPACE, i.to_bytes(4, "big", signed=True)))
    ]
    assert own, f"no probe row has {DOWN_NODE} as its {READER_DC} replica"
    before = _held(reader, own)
    assert before < len(own), f"{DOWN_NODE} holds {before} of its {len(own)} rows before any repair: hints were kept"

    # Two keyspaces: nodetool repair takes one per run, so the role loops over them.
    keyspaces = f'["{KEYSPACE}", "system_auth"]'
    took = play("cassandra_repair.yml", "-e", f'{{"cassandra_repair_keyspaces": {keyspaces}}}')
    after = _held(reader, own)
    FIGURES[f"repair: {DOWN_NODE}'s rows held before / after the playbook (of {len(own)})"] = f"{before} / {after}"
    FIGURES["repair: node UN again after start / repair playbook (s)"] = f"{back_s:.0f} / {took:.0f}"
    assert after == len(own)
    assert _held(writer, list(range(ROWS))) == ROWS
