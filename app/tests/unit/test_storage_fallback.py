"""The consistency fallback of Cassandra.execute, against a fake driver session.

The fake session fails statements run under the main-level profiles the way a DC with a
replica down does (cassandra.Unavailable, or replica timeouts) and records which
execution profile each attempt used.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from cassandra import ConsistencyLevel, ReadTimeout, Unavailable, WriteTimeout, WriteType
from cassandra.cluster import NoHostAvailable
from prometheus_client import REGISTRY

from checkout.adapters.cassandra.sales import CassandraSaleWriter
from checkout.adapters.cassandra.session import (
    BurstWarning,
    Cassandra,
    fallback_level,
    levels,
    profile_name,
    statement_kind,
)
from checkout.config import Settings
from checkout.dataset import DatasetRow
from checkout.domain import STORE_TZ, failover_dc, standby_dc
from checkout.errors import DependencyUnavailable
from checkout.events import event_from_row
from tests.unit.fakes import FakeFuture

DC = Settings().cassandra_local_dc
WRITE, READ = profile_name(DC, False, False), profile_name(DC, True, False)
FALLBACK_WRITE, FALLBACK_READ = profile_name(DC, False, True), profile_name(DC, True, True)
MAIN_PROFILES = {WRITE, READ}


def unavailable() -> Exception:
    error: Exception = Unavailable(
        "Cannot achieve consistency level LOCAL_QUORUM",
        consistency=ConsistencyLevel.LOCAL_QUORUM,
        required_replicas=2,
        alive_replicas=1,
    )
    return error


@dataclass
class FakeSession:
    """Main-level profiles fail with `failures` (in turn, the last one repeating)."""

    failures: list[Exception] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (profile, cql)

    def prepare(self, cql: str) -> Any:
        return SimpleNamespace(
            query_string=cql, consistency_level=ConsistencyLevel.ALL, is_idempotent=False
        )

    def execute_async(
        self, statement: Any, params: Any, execution_profile: str = WRITE
    ) -> FakeFuture:
        self.calls.append((execution_profile, statement.query_string))
        if execution_profile in MAIN_PROFILES and self.failures:
            error = self.failures.pop(0) if len(self.failures) > 1 else self.failures[0]
            return FakeFuture(error)
        return FakeFuture([SimpleNamespace(ok=True)])


def make_db(session: FakeSession, **settings: Any) -> Cassandra:
    values: dict[str, Any] = {"cassandra_write_attempts": 3, **settings}
    return Cassandra(
        Settings(**values),
        connect=lambda _settings, keyspace: (SimpleNamespace(), session),
    )


def downgrades(kind: str, table: str, main: str = "LOCAL_QUORUM", to: str = "LOCAL_ONE") -> float:
    labels = {"kind": kind, "table": table, "from_level": main, "to_level": to}
    value = REGISTRY.get_sample_value("checkout_cassandra_consistency_downgrades_total", labels)
    return value or 0.0


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    real_sleep = asyncio.sleep
    monkeypatch.setattr(asyncio, "sleep", lambda _s: real_sleep(0))


INSERT_CART = "INSERT INTO carts (cart_id, branch) VALUES (?, ?)"
SELECT_CART = "SELECT cart_id FROM carts WHERE cart_id = ?"


def test_a_write_the_main_level_cannot_meet_is_rerun_at_the_fallback_level() -> None:
    session = FakeSession([unavailable()])
    db = make_db(session)
    statement = db.prepare(INSERT_CART)
    before = downgrades("insert", "carts")
    rows = asyncio.run(db.execute(statement, ("c1", "A")))
    assert rows == [SimpleNamespace(ok=True)]
    assert [profile for profile, _ in session.calls] == [
        WRITE,
        FALLBACK_WRITE,
    ]
    assert downgrades("insert", "carts") == before + 1
    # The level is the profile's: the statement carries none of its own.
    assert statement.consistency_level is None
    assert statement.is_idempotent is True


def test_unavailable_wrapped_by_the_driver_retry_falls_back_too() -> None:
    # The driver retries Unavailable on the next host; with none left it raises this.
    exhausted = NoHostAvailable(
        "Unable to complete the operation", {"10.0.0.1:9042": unavailable()}
    )
    session = FakeSession([exhausted])
    db = make_db(session)
    asyncio.run(db.execute(db.prepare(INSERT_CART), ("c1", "A")))
    assert [profile for profile, _ in session.calls] == [
        WRITE,
        FALLBACK_WRITE,
    ]


def test_no_host_at_all_is_not_a_reason_to_lower_the_level() -> None:
    refused = NoHostAvailable("Unable to connect", {"10.0.0.1:9042": ConnectionRefusedError()})
    session = FakeSession([refused])
    db = make_db(session)
    with pytest.raises(DependencyUnavailable):
        asyncio.run(db.execute(db.prepare(INSERT_CART), ("c1", "A")))
    assert {profile for profile, _ in session.calls} == {WRITE}


def test_a_read_falls_back_to_the_read_fallback_profile() -> None:
    session = FakeSession([unavailable()])
    db = make_db(session)
    before = downgrades("select", "carts")
    asyncio.run(db.execute(db.prepare(SELECT_CART), ("c1",)))
    assert [profile for profile, _ in session.calls] == [READ, FALLBACK_READ]
    assert downgrades("select", "carts") == before + 1


def test_without_a_fallback_unavailable_is_retried_at_the_main_level_then_reported() -> None:
    session = FakeSession([unavailable()])
    db = make_db(session, cassandra_fallback_consistency="")
    before = downgrades("insert", "carts")
    with pytest.raises(DependencyUnavailable, match="failed 3 times"):
        asyncio.run(db.execute(db.prepare(INSERT_CART), ("c1", "A")))
    assert [profile for profile, _ in session.calls] == [WRITE] * 3
    assert downgrades("insert", "carts") == before


def test_a_replica_timeout_falls_back_only_after_the_retry_at_the_main_level() -> None:
    timeout = WriteTimeout(
        "timed out", consistency=ConsistencyLevel.LOCAL_QUORUM, write_type=WriteType.SIMPLE
    )
    session = FakeSession([timeout, timeout])
    db = make_db(session)
    asyncio.run(db.execute(db.prepare(INSERT_CART), ("c1", "A")))
    assert [profile for profile, _ in session.calls] == [
        WRITE,
        WRITE,
        FALLBACK_WRITE,
    ]


def test_a_read_timeout_falls_back_after_the_retry_too() -> None:
    timeout = ReadTimeout("timed out", consistency=ConsistencyLevel.LOCAL_QUORUM)
    session = FakeSession([timeout, timeout])
    db = make_db(session)
    asyncio.run(db.execute(db.prepare(SELECT_CART), ("c1",)))
    assert [profile for profile, _ in session.calls] == [
        READ,
        READ,
        FALLBACK_READ,
    ]


def test_a_fallback_that_is_not_weaker_is_no_fallback() -> None:
    session = FakeSession([unavailable()])
    db = make_db(session, cassandra_consistency="ONE", cassandra_fallback_consistency="LOCAL_ONE")
    with pytest.raises(DependencyUnavailable):
        asyncio.run(db.execute(db.prepare(INSERT_CART), ("c1", "A")))
    assert {profile for profile, _ in session.calls} == {WRITE}


def test_the_consumer_write_path_rides_through_a_replica_loss(
    dataset_rows: list[DatasetRow],
) -> None:
    session = FakeSession([unavailable()])
    db = make_db(session)
    writer = CassandraSaleWriter(db, concurrency=8)
    events = [event_from_row(row) for row in dataset_rows[:3]]
    asyncio.run(writer.write(events))
    fallback_writes = [cql for profile, cql in session.calls if profile == FALLBACK_WRITE]
    main_writes = [cql for profile, cql in session.calls if profile == WRITE]
    # One sale row per invoice + the day index (all three rows are of one branch-day or
    # more; the consumer never moves stock).
    days = len({(e.branch, e.sold_at.astimezone(STORE_TZ).date()) for e in events})
    assert len(fallback_writes) == len(main_writes) == 3 + days
    assert {statement_kind(cql)[1] for cql in fallback_writes} == {"sales", "sale_days"}


def test_the_day_index_is_written_once_per_branch_day_and_hour(
    dataset_rows: list[DatasetRow],
) -> None:
    now = [0.0]
    session = FakeSession()
    writer = CassandraSaleWriter(make_db(session), concurrency=8, clock=lambda: now[0])
    first = event_from_row(dataset_rows[0])
    same_day = first.model_copy(update={"invoice_id": "another-invoice"})

    def day_writes() -> int:
        return sum(cql.startswith("INSERT INTO sale_days") for _, cql in session.calls)

    asyncio.run(writer.write([first, same_day]))
    assert day_writes() == 1
    now[0] += 3599
    asyncio.run(writer.write([same_day]))
    assert day_writes() == 1
    now[0] += 1
    asyncio.run(writer.write([same_day]))
    assert day_writes() == 2


def test_the_consumer_writes_one_row_per_invoice_and_moves_no_stock(
    dataset_rows: list[DatasetRow],
) -> None:
    session = FakeSession()
    writer = CassandraSaleWriter(make_db(session), concurrency=8)
    replayed = event_from_row(dataset_rows[0])
    from_api = event_from_row(dataset_rows[1]).model_copy(update={"stock_moved": True})
    asyncio.run(writer.write([replayed, from_api]))
    tables = [statement_kind(cql)[1] for _, cql in session.calls]
    assert tables.count("sales") == 2
    assert not any(table.startswith("stock") for table in tables)


def test_a_failed_batch_writes_its_day_index_again(dataset_rows: list[DatasetRow]) -> None:
    session = FakeSession([WriteTimeout("timed out", write_type=WriteType.SIMPLE)])
    writer = CassandraSaleWriter(make_db(session, cassandra_fallback_consistency="LOCAL_QUORUM"), 8)
    event = event_from_row(dataset_rows[0])
    with pytest.raises(DependencyUnavailable):
        asyncio.run(writer.write([event]))
    session.failures.clear()
    session.calls.clear()
    asyncio.run(writer.write([event]))
    assert sum(cql.startswith("INSERT INTO sale_days") for _, cql in session.calls) == 1


def test_one_warning_per_burst_of_downgrades(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    session = FakeSession([unavailable()])
    db = make_db(session)
    db._downgrade_warning = BurstWarning(quiet_s=60, clock=lambda: now[0])
    statement = db.prepare(INSERT_CART)
    with caplog.at_level(logging.WARNING, logger="checkout.storage"):
        for _ in range(5):
            asyncio.run(db.execute(statement, ("c1", "A")))
            now[0] += 1
        now[0] += 120
        asyncio.run(db.execute(statement, ("c1", "A")))
    warnings = [r.getMessage() for r in caplog.records if "cannot meet" in r.getMessage()]
    assert len(warnings) == 2, warnings
    assert "run at LOCAL_ONE" in warnings[0]
    assert "the previous burst had 5" in warnings[1]


def test_statement_kind_names_the_table() -> None:
    assert statement_kind("INSERT INTO sales (a) VALUES (?)") == (
        "insert",
        "sales",
    )
    assert statement_kind("SELECT sum(delta) AS moved FROM ks.stock_moves WHERE b = ?") == (
        "select",
        "stock_moves",
    )
    assert statement_kind("UPDATE checkout.carts SET x = 1") == ("update", "carts")
    assert statement_kind("TRUNCATE carts") == ("other", "")


@pytest.mark.parametrize(
    ("main", "fallback", "expected"),
    [
        ("LOCAL_QUORUM", "LOCAL_ONE", "LOCAL_ONE"),
        ("ALL", "QUORUM", "QUORUM"),
        ("QUORUM", "ANY", "ANY"),
        ("LOCAL_ONE", "LOCAL_ONE", None),
        ("ONE", "LOCAL_QUORUM", None),
        ("LOCAL_QUORUM", "", None),
    ],
)
def test_fallback_level_is_weaker_or_none(main: str, fallback: str, expected: str | None) -> None:
    assert fallback_level(main, fallback) == expected


def test_reads_never_use_any() -> None:
    settings = Settings(cassandra_consistency="QUORUM", cassandra_fallback_consistency="ANY")
    assert levels(settings) == {False: ("QUORUM", "ANY"), True: ("QUORUM", "ONE")}


@dataclass
class DownDcSession(FakeSession):
    """Every profile routed to a DC in `down` finds no host, as when all its nodes are down."""

    down: set[str] = field(default_factory=set)

    def execute_async(
        self, statement: Any, params: Any, execution_profile: str = WRITE
    ) -> FakeFuture:
        self.calls.append((execution_profile, statement.query_string))
        if execution_profile.rpartition("@")[2] in self.down:
            return FakeFuture(NoHostAvailable("Unable to complete the operation", {}))
        return FakeFuture([SimpleNamespace(ok=True)])


def db_with_dcs(session: DownDcSession, factors: dict[str, dict[str, int]]) -> Cassandra:
    """A Cassandra whose driver metadata knows these keyspaces and one node per DC."""
    dcs = {dc for by_dc in factors.values() for dc in by_dc}
    hosts = [SimpleNamespace(datacenter=dc, is_up=dc not in session.down) for dc in dcs]
    keyspaces = {
        name: SimpleNamespace(replication_strategy=SimpleNamespace(dc_replication_factors=by_dc))
        for name, by_dc in factors.items()
    }
    metadata = SimpleNamespace(keyspaces=keyspaces, all_hosts=lambda: hosts)
    return Cassandra(
        Settings(cassandra_write_attempts=2, cassandra_local_dc="Yangon"),
        connect=lambda _settings, keyspace: (SimpleNamespace(metadata=metadata), session),
    )


LAB_FACTORS = {
    "checkout": {"Yangon": 2, "Mandalay": 2, "Naypyitaw": 2},
    "checkout_yangon": {"Yangon": 2, "Mandalay": 1},
    "checkout_naypyitaw": {"Naypyitaw": 2},
}


def failovers(table: str, from_dc: str, to_dc: str) -> float:
    labels = {"kind": "insert", "table": table, "from_dc": from_dc, "to_dc": to_dc}
    return REGISTRY.get_sample_value("checkout_cassandra_dc_failovers_total", labels) or 0.0


def test_a_region_keyspace_fails_over_to_its_standby_dc_when_its_dc_is_down() -> None:
    session = DownDcSession(down={"Yangon"})
    db = db_with_dcs(session, LAB_FACTORS)
    statement = db.prepare("INSERT INTO checkout_yangon.carts (cart_id, branch) VALUES (?, ?)")
    statement.keyspace = "checkout_yangon"
    before = failovers("carts", "Yangon", "Mandalay")
    asyncio.run(db.execute(statement, ("c1", "A"), dc="Yangon"))
    assert [profile for profile, _ in session.calls] == ["write@Yangon", "write@Mandalay"]
    assert failovers("carts", "Yangon", "Mandalay") == before + 1
    db.ready()  # the API stays ready: its statements are served elsewhere


def test_the_shared_keyspace_fails_over_to_the_next_dc_that_is_up() -> None:
    session = DownDcSession(down={"Yangon", "Mandalay"})
    db = db_with_dcs(session, LAB_FACTORS)
    asyncio.run(db.execute(db.prepare(INSERT_CART), ("c1", "A")))  # keyspace: the shared one
    assert [profile for profile, _ in session.calls] == ["write@Yangon", "write@Naypyitaw"]


def test_a_keyspace_with_no_replica_outside_the_down_dc_is_unavailable() -> None:
    session = DownDcSession(down={"Naypyitaw"})
    db = db_with_dcs(session, LAB_FACTORS)
    statement = db.prepare("INSERT INTO checkout_naypyitaw.carts (cart_id, branch) VALUES (?, ?)")
    statement.keyspace = "checkout_naypyitaw"
    with pytest.raises(DependencyUnavailable, match="Cassandra DC Naypyitaw failed 2 times"):
        asyncio.run(db.execute(statement, ("c1", "C"), dc="Naypyitaw"))
    assert {profile for profile, _ in session.calls} == {"write@Naypyitaw"}


def test_no_node_up_anywhere_is_not_ready() -> None:
    db = db_with_dcs(DownDcSession(down={"Yangon", "Mandalay", "Naypyitaw"}), LAB_FACTORS)
    with pytest.raises(DependencyUnavailable, match="no node"):
        db.ready()


@pytest.mark.parametrize(
    ("dc", "up", "expected"),
    [
        ("Yangon", {"Mandalay", "Naypyitaw"}, "Mandalay"),  # after Yangon, wrapping around
        ("Naypyitaw", {"Mandalay", "Yangon"}, "Yangon"),
        ("Yangon", {"Naypyitaw"}, "Naypyitaw"),  # the next one is down too
        ("Yangon", set(), None),
    ],
)
def test_failover_dc_is_the_next_dc_by_name_with_replicas_and_a_node_up(
    dc: str, up: set[str], expected: str | None
) -> None:
    assert failover_dc(dc, LAB_FACTORS["checkout"], up) == expected
    # A region keyspace has replicas in its standby DC only.
    assert failover_dc("Yangon", LAB_FACTORS["checkout_yangon"], {"Naypyitaw"}) is None
    assert standby_dc("Yangon", LAB_FACTORS["checkout"]) == "Mandalay"
    assert standby_dc("Yangon", {"Yangon"}) is None
