"""Retention, watched rather than read from the schema: a real sale row, copied into a
twin of the sales table whose only difference is a short default TTL, is readable in every
DC and then gone from every DC once the TTL has run out.

The twin lives in a scratch keyspace replicated like the sales keyspace and is dropped
after, so the sales themselves are never touched. The 90-day TTL of the real table is
checked by test_app_checkout; Kafka's retention by tests/lab/test_kafka.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cassandra import ConsistencyLevel
from cassandra.query import SimpleStatement
from checkout.cql import SALES_TTL_SECONDS

from .conftest import FIGURES
from .lab import SHARED_KEYSPACE

TWIN_KEYSPACE = "checkout_retention"
TWIN_TTL_S = 8
DDL_TIMEOUT_S = 60.0


@pytest.fixture
def twin(dc_sessions: dict[str, Any]) -> Iterator[str]:
    """The sales table's own CQL, renamed into a scratch keyspace, with a short TTL."""
    session = next(iter(dc_sessions.values()))
    keyspace = session.cluster.metadata.keyspaces[SHARED_KEYSPACE]
    table_cql = keyspace.tables["sales"].as_cql_query()
    assert f"default_time_to_live = {SALES_TTL_SECONDS}" in table_cql, table_cql
    replication = keyspace.replication_strategy.export_for_schema()
    session.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {TWIN_KEYSPACE} WITH replication = {replication}",
        timeout=DDL_TIMEOUT_S,
    )
    twin_cql = re.sub(r"default_time_to_live = \d+", f"default_time_to_live = {TWIN_TTL_S}", table_cql)
    twin_cql = twin_cql.replace(
        f"CREATE TABLE {SHARED_KEYSPACE}.sales", f"CREATE TABLE IF NOT EXISTS {TWIN_KEYSPACE}.sales"
    )
    session.execute(twin_cql, timeout=DDL_TIMEOUT_S)
    try:
        yield f"{TWIN_KEYSPACE}.sales"
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {TWIN_KEYSPACE}", timeout=DDL_TIMEOUT_S)


def test_a_sale_row_expires_from_every_dc(dc_sessions: dict[str, Any], twin: str) -> None:
    any_session = next(iter(dc_sessions.values()))
    sale = any_session.execute(f"SELECT JSON * FROM {SHARED_KEYSPACE}.sales LIMIT 1").one()
    if sale is None:
        pytest.skip("no sale stored yet to copy (run a checkout first)")
    # ALL: every replica in every DC holds the row before the clock starts.
    insert = SimpleStatement(f"INSERT INTO {twin} JSON %s", consistency_level=ConsistencyLevel.ALL)
    any_session.execute(insert, (sale[0],))
    written = time.monotonic()
    where = "WHERE branch = %s AND day = %s AND sold_at = %s AND invoice_id = %s"
    row = any_session.execute(f"SELECT branch, day, sold_at, invoice_id FROM {twin} LIMIT 1").one()
    key = (row.branch, row.day, row.sold_at, row.invoice_id)
    query = f"SELECT TTL(total) AS ttl FROM {twin} {where}"

    for dc, session in dc_sessions.items():
        found = session.execute(query, key).one()
        assert found is not None, f"the copied sale is not readable in DC {dc}"
        assert 0 < found.ttl <= TWIN_TTL_S, f"DC {dc}: TTL {found.ttl}"

    gone_after: dict[str, float] = {}
    deadline = written + TWIN_TTL_S + 30
    while len(gone_after) < len(dc_sessions) and time.monotonic() < deadline:
        for dc, session in dc_sessions.items():
            if dc not in gone_after and session.execute(query, key).one() is None:
                gone_after[dc] = round(time.monotonic() - written, 1)
        time.sleep(0.5)
    FIGURES[f"sale row with a {TWIN_TTL_S} s TTL: gone per DC, s after the write"] = gone_after
    assert sorted(gone_after) == sorted(dc_sessions), f"still readable after {TWIN_TTL_S + 30} s: {gone_after}"
    # Never before the TTL: the TTL is what removed it.
    assert min(gone_after.values()) >= TWIN_TTL_S - 1, gone_after
