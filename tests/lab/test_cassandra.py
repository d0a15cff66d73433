"""Cassandra in the lab: every node UN in its region's DC, CQL on every node,
system keyspaces replicated per DC with the inventory's factors."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import WhiteListRoundRobinPolicy

from tests.conftest import address, group_hosts, hostvars, lab_host

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("lab_is_up")]

NODES = group_hosts("cassandra")


def _expected_dcs() -> Counter[str]:
    return Counter(hostvars(h)["region"] for h in NODES)


def test_every_node_is_up_normal_in_three_dcs() -> None:
    status = lab_host(NODES[0]).check_output("nodetool status")
    by_dc: Counter[str] = Counter()
    dc = None
    for line in status.splitlines():
        if line.startswith("Datacenter: "):
            dc = line.split(": ", 1)[1]
        elif re.match(r"^UN\s+\d", line):
            by_dc[dc] += 1
    assert by_dc == _expected_dcs(), status


@pytest.mark.parametrize("node", NODES)
def test_node_answers_cql_with_its_dc_and_rack(node: str) -> None:
    only_this_node = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([address(node)]))
    cluster = Cluster([address(node)], execution_profiles={EXEC_PROFILE_DEFAULT: only_this_node}, connect_timeout=10)
    try:
        row = cluster.connect().execute("SELECT data_center, rack FROM system.local").one()
    finally:
        cluster.shutdown()
    assert (row.data_center, row.rack) == (hostvars(node)["region"], hostvars(node).get("rack", "rack1"))


@pytest.mark.parametrize("keyspace", ["system_auth", "system_distributed", "system_traces"])
def test_system_keyspace_uses_nts_with_inventory_rf(keyspace: str) -> None:
    cluster = Cluster([address(n) for n in NODES], connect_timeout=10)
    try:
        row = (
            cluster.connect()
            .execute("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s", (keyspace,))
            .one()
        )
    finally:
        cluster.shutdown()
    expected = {dc: str(min(3, n)) for dc, n in _expected_dcs().items()}
    expected["class"] = "org.apache.cassandra.locator.NetworkTopologyStrategy"
    assert dict(row.replication) == expected


@pytest.mark.parametrize("node", NODES)
def test_cassandra_runs_with_the_inventory_timer_slack(node: str) -> None:
    slack_us = int(hostvars(node).get("cassandra_timer_slack_us", 0))
    shown = lab_host(node).check_output("systemctl show -p TimerSlackNSec --value cassandra")
    # systemd shows an unset slack as empty or "0"; the kernel then keeps its default.
    assert int(shown or 0) == slack_us * 1000, shown
