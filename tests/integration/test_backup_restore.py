"""Backup and restore on the lab (playbooks/cassandra_backup.yml, cassandra_restore.yml):
the sales table is counted in every DC, backed up, dropped, restored from the backup,
and counted again; then restored a second time over itself, which changes nothing.
(A restore with bad variables is refused before any node is touched: tests/unit.)

About 4 minutes (a backup, two restores): CI leaves it out for its time budget;
`./lab test` runs it."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pytest
from cassandra import ConsistencyLevel
from cassandra.query import SimpleStatement

from tests.conftest import ROOT

from .conftest import FIGURES
from .lab import SHARED_KEYSPACE, Inventory, play

TABLE = f"{SHARED_KEYSPACE}.sales"
BACKUPS = ROOT / ".lab" / "backups"


def _fingerprint(session: Any) -> tuple[int, str]:
    """Rows of the table in the session's DC (every replica there asked) and a digest of
    their keys and totals: equal digests mean the same sales, not just as many."""
    statement = SimpleStatement(
        f"SELECT branch, day, sold_at, invoice_id, total FROM {TABLE}",
        consistency_level=ConsistencyLevel.LOCAL_QUORUM,
        fetch_size=2000,
    )
    rows = sorted(
        f"{r.branch}|{r.day}|{r.sold_at.isoformat()}|{r.invoice_id}|{r.total}" for r in session.execute(statement)
    )
    return len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest()


def _fingerprints(dc_sessions: dict[str, Any]) -> dict[str, tuple[int, str]]:
    return {dc: _fingerprint(session) for dc, session in sorted(dc_sessions.items())}


def _restore(tag: str) -> float:
    return play(
        "cassandra_restore.yml",
        "-e",
        f"cassandra_restore_tag={tag}",
        "-e",
        json.dumps({"cassandra_restore_tables": [TABLE]}),
    )


@pytest.mark.outside_ci
def test_a_dropped_table_comes_back_from_the_backup_with_every_row(lab: Inventory, dc_sessions: dict[str, Any]) -> None:
    before = _fingerprints(dc_sessions)
    counts = {dc: count for dc, (count, _) in before.items()}
    assert min(counts.values()) > 0, f"nothing to back up in {TABLE}: {counts}"
    assert len(set(before.values())) == 1, f"the DCs disagree before the backup: {counts}"

    tag = time.strftime("lab-test-%Y%m%dT%H%M%SZ", time.gmtime())
    took_backup = play("cassandra_backup.yml", "-e", f"cassandra_backup_tag={tag}")
    manifest = json.loads((BACKUPS / tag / "manifest.json").read_text())
    assert set(manifest["nodes"]) == set(lab.groups["cassandra"]), manifest
    assert (BACKUPS / tag / "schema" / f"{TABLE}.cql").is_file()

    session = next(iter(dc_sessions.values()))
    session.execute(f"DROP TABLE {TABLE}")
    session.cluster.refresh_schema_metadata()
    assert "sales" not in session.cluster.metadata.keyspaces[SHARED_KEYSPACE].tables

    took_restore = _restore(tag)
    after = _fingerprints(dc_sessions)
    assert after == before, f"before {before}, after the restore {after}"

    again = _restore(tag)
    assert _fingerprints(dc_sessions) == before, "a second restore changed the rows"

    dc, (count, _) = next(iter(after.items()))
    FIGURES["backup/restore: sales rows per DC before / after the drop and restore"] = f"{count} / {after[dc][0]}"
    FIGURES["backup / restore of a dropped table / restore again (s)"] = (
        f"{took_backup:.0f} / {took_restore:.0f} / {again:.0f}"
    )
