"""Render and apply the versioned CQL files of checkout/cql/, idempotently.

Two kinds of keyspace: the shared one (cql/shared/: sales), replicated to every DC, and
one per DC for that region's operational state (cql/region/: carts, stock), replicated
in its own DC and, with --standby-replicas, in one standby DC (checkout.domain.standby_dc).
Each file NNN_name.cql is applied once per keyspace, in order, and
recorded in that keyspace's schema_version with its checksum; every statement is IF NOT
EXISTS, so a run interrupted half-way is simply run again. The replication comes from
the command line (the inventory's DCs and node counts); if it differs from a live
keyspace, the keyspace is altered, since adding a node or a region is an inventory edit
plus a playbook run. Then every branch's stock levels that are missing are seeded.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from string import Template
from typing import Any

from cassandra import OperationTimedOut
from cassandra.query import BatchStatement, BatchType

from checkout.adapters.cassandra.session import connect_cluster, profile_name
from checkout.catalog import default_catalog
from checkout.config import Settings, get_settings
from checkout.cql import (
    CART_TTL_SECONDS,
    IDEMPOTENCY_TTL_SECONDS,
    SALES_TTL_SECONDS,
    TWCS_WINDOW_DAYS,
)
from checkout.domain import STORE_TZ, Branch, region_keyspace, region_replication
from checkout.errors import DependencyUnavailable

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


def schema_files(
    keyspace: str, replication: dict[str, int], kind: str = "shared"
) -> list[SchemaFile]:
    values = {
        "keyspace": keyspace,
        "replication": replication_cql(replication),
        "sales_ttl": SALES_TTL_SECONDS,
        "cart_ttl": CART_TTL_SECONDS,
        "idempotency_ttl": IDEMPOTENCY_TTL_SECONDS,
        "twcs_window_days": TWCS_WINDOW_DAYS,
    }
    files = []
    for entry in sorted(
        resources.files("checkout.cql").joinpath(kind).iterdir(), key=lambda e: e.name
    ):
        match = _FILE_RE.match(entry.name)
        if match:
            text = Template(entry.read_text("utf-8")).substitute(values)
            files.append(SchemaFile(int(match.group(1)), entry.name, text))
    return files


def statements(text: str) -> list[str]:
    """Split a CQL file on ';' at line ends, dropping '--' comment lines."""
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return [stmt.strip() for stmt in re.split(r";\s*$", body, flags=re.M) if stmt.strip()]


def _live_replication(session: Any, keyspace: str, profile: str) -> dict[str, int] | None:
    row = _execute(
        session,
        "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s",
        (keyspace,),
        profile=profile,
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
# Stock levels per single-partition batch when seeding (a catalog is ~1000 products).
SEED_BATCH = 50


def _execute(
    session: Any, stmt: Any, params: tuple[Any, ...] | None = None, profile: str | None = None
) -> Any:
    """`profile`: a DC's profile, for reads and writes of a keyspace that lives only there."""
    for attempt in range(1, DDL_ATTEMPTS + 1):
        try:
            if profile is None:
                return session.execute(stmt, params, timeout=DDL_TIMEOUT_S)
            return session.execute(stmt, params, timeout=DDL_TIMEOUT_S, execution_profile=profile)
        except OperationTimedOut:
            if attempt == DDL_ATTEMPTS:
                raise
            log.warning("schema statement timed out (attempt %d), sending it again", attempt)
    return None


@dataclass(frozen=True, slots=True)
class KeyspacePlan:
    kind: str  # "shared" (cql/shared/) or "region" (cql/region/)
    replication: dict[str, int]
    home_dc: str | None  # a region keyspace's DC, where it is read and written


def keyspaces(
    shared: str, replication: dict[str, int], standby_replicas: int = 0
) -> dict[str, KeyspacePlan]:
    """keyspace -> plan: the shared one everywhere, each DC's own in it (and its standby)."""
    plan = {shared: KeyspacePlan("shared", replication, None)}
    for dc in sorted(replication):
        factors = region_replication(dc, replication, standby_replicas)
        plan[region_keyspace(shared, dc)] = KeyspacePlan("region", factors, dc)
    return plan


def _apply_keyspace(
    session: Any, keyspace: str, plan: KeyspacePlan, files: list[SchemaFile], local_dc: str
) -> list[str]:
    done: list[str] = []
    replication = plan.replication
    # A region keyspace is read and written in its home DC (LOCAL_* levels count its
    # replicas there); the shared one from here. Reads always name a read profile: the
    # default one is the write level, and ANY (a write-only level) refuses reads.
    dc = plan.home_dc
    read = profile_name(dc or local_dc, True, False)
    write = None if dc is None else profile_name(dc, False, False)
    live = _live_replication(session, keyspace, read)
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
        for row in _execute(
            session, f"SELECT version, checksum FROM {keyspace}.schema_version", profile=read
        )
    }
    for schema_file in files:
        if schema_file.version in applied:
            if applied[schema_file.version] != schema_file.checksum:
                log.warning(
                    "%s of %s changed after it was applied; add a new numbered file instead",
                    schema_file.name,
                    keyspace,
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
            profile=write,
        )
        done.append(f"applied {schema_file.name} to {keyspace}")
    return done


def _seed_stock(session: Any, keyspace: str, dc: str, branch: Branch, level: int) -> int:
    """Give every catalog product a level at `branch` unless it has one; returns how many.

    as_of is yesterday: nothing moved before the seeding, so today's movements count."""
    # Coordinated in the branch's DC: its keyspace has replicas nowhere else.
    have = {
        row.product_id
        for row in _execute(
            session,
            f"SELECT product_id FROM {keyspace}.stock_levels WHERE branch = %s",
            (branch.value,),
            profile=profile_name(dc, True, False),
        )
    }
    missing = [p.product_id for p in default_catalog() if p.product_id not in have]
    if not missing:
        return 0
    as_of = datetime.now(UTC).astimezone(STORE_TZ).date() - timedelta(days=1)
    insert = session.prepare(
        f"INSERT INTO {keyspace}.stock_levels (branch, product_id, level, as_of) "
        "VALUES (?, ?, ?, ?)"
    )
    insert.consistency_level = None
    # One branch's levels are one partition: a few single-partition batches seed them all.
    for start in range(0, len(missing), SEED_BATCH):
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        for pid in missing[start : start + SEED_BATCH]:
            batch.add(insert, (branch.value, pid, level, as_of))
        _execute(session, batch, profile=profile_name(dc, False, False))
    return len(missing)


def apply(settings: Settings, replication: dict[str, int], standby_replicas: int = 0) -> list[str]:
    """Apply pending schema files to every keyspace, seed missing stock levels; return
    what was done, one line per action."""
    shared = settings.cassandra_keyspace
    done: list[str] = []
    cluster, session = connect_cluster(
        settings, keyspace=None, schema_agreement_wait_s=60, dcs=replication
    )
    try:
        for keyspace, plan in keyspaces(shared, replication, standby_replicas).items():
            files = schema_files(keyspace, plan.replication, plan.kind)
            done += _apply_keyspace(session, keyspace, plan, files, settings.cassandra_local_dc)
        for branch, dc in sorted(settings.branch_dcs.items()):
            if dc not in replication:
                continue
            keyspace = region_keyspace(shared, dc)
            seeded = _seed_stock(session, keyspace, dc, branch, settings.initial_stock)
            if seeded:
                done.append(
                    f"seeded {seeded} stock levels of branch {branch} in {keyspace} "
                    f"at {settings.initial_stock}"
                )
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
        "--standby-replicas",
        type=int,
        choices=range(4),
        default=0,
        metavar="{0..3}",
        help="replicas of each region keyspace in its standby DC (the next DC by name), "
        "so that region fails over when its own DC is down; 0 keeps it in its DC only",
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
        for keyspace, plan in keyspaces(
            settings.cassandra_keyspace, replication, args.standby_replicas
        ).items():
            for schema_file in schema_files(keyspace, plan.replication, plan.kind):
                print(f"-- {keyspace}: {schema_file.name} (checksum {schema_file.checksum})")
                print(schema_file.text)
        return 0
    try:
        done = apply(settings, replication, args.standby_replicas)
    except DependencyUnavailable as error:
        print(f"checkout-schema: {error}", file=sys.stderr)
        return 1
    print(
        "\n".join(done)
        if done
        else f"schema of {settings.cassandra_keyspace} and its regions is up to date"
    )
    return 0
