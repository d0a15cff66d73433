"""Render and apply the versioned CQL files of checkout/cql/, idempotently.

Each file NNN_name.cql is applied once, in order, and recorded in schema_version with
its checksum; every statement is IF NOT EXISTS, so a run interrupted half-way is simply
run again. The keyspace's replication comes from the command line (the inventory's DCs
and node counts); if it differs from the live keyspace, the keyspace is altered, since
adding a region is an inventory edit plus a playbook run.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from string import Template
from typing import Any

from cassandra import OperationTimedOut

from checkout.config import Settings, get_settings
from checkout.cql import (
    CART_TTL_SECONDS,
    IDEMPOTENCY_TTL_SECONDS,
    SALES_TTL_SECONDS,
    TWCS_WINDOW_DAYS,
)
from checkout.errors import DependencyUnavailable
from checkout.storage import connect_cluster

_FILE_RE = re.compile(r"^(\d{3})_[a-z0-9_]+\.cql$")
_DC_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_NTS = "org.apache.cassandra.locator.NetworkTopologyStrategy"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SchemaFile:
    version: int
    name: str
    text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]


def parse_replication(spec: str) -> dict[str, int]:
    """'Yangon:2,Mandalay:2' -> {'Yangon': 2, 'Mandalay': 2}."""
    replication: dict[str, int] = {}
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        dc, _, factor = part.partition(":")
        if not _DC_RE.match(dc) or not factor.isdigit() or not 1 <= int(factor) <= 9:
            raise ValueError(f"replication entry {part!r} is not DC:RF with RF 1..9")
        replication[dc] = int(factor)
    if not replication:
        raise ValueError("replication needs at least one DC:RF entry")
    return replication


def replication_cql(replication: dict[str, int]) -> str:
    entries = ", ".join(f"'{dc}': {rf}" for dc, rf in sorted(replication.items()))
    return f"{{'class': 'NetworkTopologyStrategy', {entries}}}"


def schema_files(keyspace: str, replication: dict[str, int]) -> list[SchemaFile]:
    values = {
        "keyspace": keyspace,
        "replication": replication_cql(replication),
        "sales_ttl": SALES_TTL_SECONDS,
        "cart_ttl": CART_TTL_SECONDS,
        "idempotency_ttl": IDEMPOTENCY_TTL_SECONDS,
        "twcs_window_days": TWCS_WINDOW_DAYS,
    }
    files = []
    for entry in sorted(resources.files("checkout.cql").iterdir(), key=lambda e: e.name):
        match = _FILE_RE.match(entry.name)
        if match:
            text = Template(entry.read_text("utf-8")).substitute(values)
            files.append(SchemaFile(int(match.group(1)), entry.name, text))
    return files


def statements(text: str) -> list[str]:
    """Split a CQL file on ';' at line ends, dropping '--' comment lines."""
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return [stmt.strip() for stmt in re.split(r";\s*$", body, flags=re.M) if stmt.strip()]


def _live_replication(session: Any, keyspace: str) -> dict[str, int] | None:
    row = session.execute(
        "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s", (keyspace,)
    ).one()
    if row is None:
        return None
    options = dict(row.replication)
    if options.pop("class", None) != _NTS:
        return {}
    return {dc: int(rf) for dc, rf in options.items()}


# Schema changes wait for every node to agree; on a busy new cluster that takes far longer
# than a query. Every statement is IF NOT EXISTS or an idempotent insert, so a timed-out
# one is simply sent again.
DDL_TIMEOUT_S = 120.0
DDL_ATTEMPTS = 3


def _execute(session: Any, stmt: str, params: tuple[Any, ...] | None = None) -> Any:
    for attempt in range(1, DDL_ATTEMPTS + 1):
        try:
            return session.execute(stmt, params, timeout=DDL_TIMEOUT_S)
        except OperationTimedOut:
            if attempt == DDL_ATTEMPTS:
                raise
            log.warning("schema statement timed out (attempt %d), sending it again", attempt)
    return None


def apply(settings: Settings, replication: dict[str, int]) -> list[str]:
    """Apply pending schema files; return what was done, one line per action."""
    keyspace = settings.cassandra_keyspace
    files = schema_files(keyspace, replication)
    done: list[str] = []
    cluster, session = connect_cluster(settings, keyspace=None, schema_agreement_wait_s=60)
    try:
        live = _live_replication(session, keyspace)
        for stmt in statements(files[0].text):
            _execute(session, stmt)
        if live is not None and live != replication:
            _execute(
                session,
                f"ALTER KEYSPACE {keyspace} WITH replication = {replication_cql(replication)}",
            )
            done.append(
                f"altered {keyspace} replication {live} -> {replication}; "
                "run 'nodetool repair -full' on each node of the new or grown DCs"
            )
        applied = {
            row.version: row.checksum
            for row in _execute(session, f"SELECT version, checksum FROM {keyspace}.schema_version")
        }
        for schema_file in files:
            if schema_file.version in applied:
                if applied[schema_file.version] != schema_file.checksum:
                    log.warning(
                        "%s changed after it was applied; add a new numbered file instead",
                        schema_file.name,
                    )
                continue
            if schema_file is not files[0]:
                for stmt in statements(schema_file.text):
                    _execute(session, stmt)
            _execute(
                session,
                f"INSERT INTO {keyspace}.schema_version (version, name, checksum, applied_at) "
                "VALUES (%s, %s, %s, %s)",
                (schema_file.version, schema_file.name, schema_file.checksum, datetime.now(UTC)),
            )
            done.append(f"applied {schema_file.name}")
    finally:
        cluster.shutdown()
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="checkout-schema",
        description="Create or upgrade the checkout keyspace and tables (idempotent).",
    )
    parser.add_argument(
        "--replication",
        required=True,
        help="NetworkTopologyStrategy factors per data center, e.g. Yangon:2,Mandalay:2",
    )
    parser.add_argument(
        "--print", action="store_true", help="print the rendered CQL instead of applying it"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    settings = get_settings()
    try:
        replication = parse_replication(args.replication)
    except ValueError as error:
        parser.error(str(error))
    if args.print:
        for schema_file in schema_files(settings.cassandra_keyspace, replication):
            print(f"-- {schema_file.name} (checksum {schema_file.checksum})\n{schema_file.text}")
        return 0
    try:
        done = apply(settings, replication)
    except DependencyUnavailable as error:
        print(f"checkout-schema: {error}", file=sys.stderr)
        return 1
    print("\n".join(done) if done else f"schema of {settings.cassandra_keyspace} is up to date")
    return 0
