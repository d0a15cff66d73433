import pytest

from checkout.cql import SALES_TTL_SECONDS
from checkout.schema import (
    KeyspacePlan,
    _apply_keyspace,
    keyspaces,
    parse_replication,
    replication_cql,
    schema_files,
    statements,
)

REPLICATION = {"Yangon": 2, "Mandalay": 2, "Naypyitaw": 2}


def test_replication_spec() -> None:
    assert parse_replication("Yangon:2, Mandalay:2,Naypyitaw:2") == REPLICATION
    assert replication_cql({"B": 2, "A": 3}) == (
        "{'class': 'NetworkTopologyStrategy', 'A': 3, 'B': 2}"
    )
    for bad in ("", "Yangon", "Yangon:0", "Yan gon:2", "Yangon:x"):
        with pytest.raises(ValueError, match="replication"):
            parse_replication(bad)


def test_one_shared_keyspace_everywhere_and_one_per_dc_in_its_dc_only() -> None:
    plan = keyspaces("checkout", REPLICATION)
    assert plan == {
        "checkout": KeyspacePlan("shared", REPLICATION, None),
        "checkout_mandalay": KeyspacePlan("region", {"Mandalay": 2}, "Mandalay"),
        "checkout_naypyitaw": KeyspacePlan("region", {"Naypyitaw": 2}, "Naypyitaw"),
        "checkout_yangon": KeyspacePlan("region", {"Yangon": 2}, "Yangon"),
    }


def test_each_region_keyspace_keeps_a_standby_replica_in_the_next_dc_by_name() -> None:
    plan = keyspaces("checkout", REPLICATION, standby_replicas=1)
    assert plan["checkout"].replication == REPLICATION
    assert {ks: p.replication for ks, p in plan.items() if p.kind == "region"} == {
        "checkout_mandalay": {"Mandalay": 2, "Naypyitaw": 1},
        "checkout_naypyitaw": {"Naypyitaw": 2, "Yangon": 1},
        "checkout_yangon": {"Yangon": 2, "Mandalay": 1},
    }
    # Never more standby replicas than the standby DC has for itself.
    assert keyspaces("checkout", {"A": 3, "B": 1}, 3)["checkout_a"].replication == {"A": 3, "B": 1}
    # One DC: nowhere to stand by.
    assert keyspaces("checkout", {"A": 3}, 1)["checkout_a"].replication == {"A": 3}


@pytest.mark.parametrize(("kind", "versions"), [("shared", [1, 2]), ("region", [1, 2, 3])])
def test_files_render_in_order_with_every_placeholder_filled(
    kind: str, versions: list[int]
) -> None:
    files = schema_files("checkout_lab", REPLICATION, kind)
    assert [f.version for f in files] == versions
    for schema_file in files:
        assert "${" not in schema_file.text
        for stmt in statements(schema_file.text):
            assert "IF NOT EXISTS" in stmt, stmt
            assert "checkout_lab." in stmt or stmt.startswith("CREATE KEYSPACE")


def test_sales_are_one_row_per_invoice_expiring_after_90_days_with_twcs() -> None:
    sales = next(f for f in schema_files("checkout", REPLICATION) if f.version == 2)
    (table,) = [s for s in statements(sales.text) if "checkout.sales " in s]
    assert SALES_TTL_SECONDS == 7_776_000
    assert "default_time_to_live = 7776000" in table
    assert "'class': 'TimeWindowCompactionStrategy'" in table
    assert "PRIMARY KEY ((branch, day), sold_at, invoice_id)" in table
    assert "lines text" in table


def test_keyspace_uses_network_topology_from_the_inventory() -> None:
    (keyspace, version_table) = statements(schema_files("checkout", REPLICATION)[0].text)
    assert keyspace.startswith("CREATE KEYSPACE IF NOT EXISTS checkout")
    assert "'class': 'NetworkTopologyStrategy', 'Mandalay': 2, 'Naypyitaw': 2, 'Yangon': 2" in (
        keyspace
    )
    assert "schema_version" in version_table


@pytest.mark.parametrize("kind", ["shared", "region"])
def test_no_counters_anywhere(kind: str) -> None:
    for schema_file in schema_files("checkout", REPLICATION, kind):
        for stmt in statements(schema_file.text):
            assert " counter" not in stmt.lower()


class _RecordingSession:
    """Answers like an empty cluster; records the profile of every statement."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    def execute(
        self,
        stmt: object,
        params: object = None,
        timeout: object = None,
        execution_profile: str | None = None,
    ) -> "_Rows":
        self.calls.append((str(stmt), execution_profile))
        return _Rows()


class _Rows(list):  # type: ignore[type-arg]
    def one(self) -> None:
        return None


@pytest.mark.parametrize("keyspace", ["checkout", "checkout_yangon"])
def test_reads_name_a_read_profile_so_a_write_level_of_any_migrates(keyspace: str) -> None:
    # The default profile carries the write level; ANY is refused for reads by the server.
    plan = keyspaces("checkout", REPLICATION, standby_replicas=1)[keyspace]
    session = _RecordingSession()
    files = schema_files(keyspace, plan.replication, plan.kind)
    _apply_keyspace(session, keyspace, plan, files, "Mandalay")
    reads = [(cql, profile) for cql, profile in session.calls if cql.lstrip().startswith("SELECT")]
    assert len(reads) == 2, reads
    home = "Yangon" if keyspace == "checkout_yangon" else "Mandalay"
    assert all(profile == f"read@{home}" for _, profile in reads), reads
