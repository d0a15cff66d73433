"""The inventory decides DC sizes, replication factors and seeds in one place."""

from __future__ import annotations

import importlib.util

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("topology", ROOT / "plugins" / "filter" / "topology.py")
topology = importlib.util.module_from_spec(spec)
spec.loader.exec_module(topology)

HOSTVARS = {
    "a1": {"region": "Yangon"},
    "a2": {"region": "Yangon"},
    "a3": {"region": "Yangon"},
    "a4": {"region": "Yangon"},
    "b1": {"region": "Mandalay"},
    "b2": {"region": "Mandalay", "cassandra_seed": True},
    "c1": {"region": "Naypyitaw", "cassandra_dc": "Naypyitaw"},
}


def test_dc_sizes_count_nodes_per_region() -> None:
    assert topology.cassandra_dc_sizes(list(HOSTVARS), HOSTVARS) == {"Yangon": 4, "Mandalay": 2, "Naypyitaw": 1}


def test_nodes_marked_to_leave_stop_counting() -> None:
    hostvars = {**HOSTVARS, "a4": {"region": "Yangon", "cassandra_decommission": True}}
    staying = topology.cassandra_staying(list(hostvars), hostvars)
    assert "a4" not in staying
    assert topology.cassandra_dc_sizes(staying, hostvars) == {"Yangon": 3, "Mandalay": 2, "Naypyitaw": 1}


def test_marks_read_as_ansible_reads_a_boolean() -> None:
    hostvars = {
        "a1": {"region": "Yangon", "cassandra_decommission": "on"},
        "a2": {"region": "Yangon", "cassandra_decommission": "no"},
        "a3": {"region": "Yangon", "cassandra_seed": "1"},
    }
    assert topology.cassandra_staying(list(hostvars), hostvars) == ["a2", "a3"]
    assert topology.cassandra_seeds(["a2", "a3"], hostvars) == ["a3"]


def test_default_rf_is_node_count_capped() -> None:
    sizes = {"Yangon": 4, "Mandalay": 2, "Naypyitaw": 1}
    assert topology.cassandra_default_rf(sizes, 3) == {"Yangon": 3, "Mandalay": 2, "Naypyitaw": 1}


def test_seeds_honour_marks_and_fill_unmarked_dcs() -> None:
    assert topology.cassandra_seeds(list(HOSTVARS), HOSTVARS) == ["b2", "a1", "c1"]


def test_lab_inventory_gives_three_dcs_of_two(lab_hostvars=None) -> None:
    from tests.conftest import group_hosts, hostvars

    hosts = group_hosts("cassandra")
    hv = {h: hostvars(h) for h in hosts}
    sizes = topology.cassandra_dc_sizes(hosts, hv)
    assert sizes == {"Yangon": 2, "Mandalay": 2, "Naypyitaw": 2}
    assert topology.cassandra_default_rf(sizes, 3) == sizes


def test_node_addresses_prefer_override_then_facts_then_ansible_host() -> None:
    hostvars = {
        "n1": {"cassandra_listen_address": "10.0.0.9", "ansible_host": "192.0.2.1"},
        "n2": {"ansible_facts": {"default_ipv4": {"address": "10.0.0.2"}}, "ansible_host": "192.0.2.2"},
        "n3": {"ansible_host": "192.0.2.3"},
    }
    assert topology.node_addresses(["n1", "n2", "n3"], hostvars, "cassandra_listen_address") == [
        "10.0.0.9",
        "10.0.0.2",
        "192.0.2.3",
    ]


def test_branch_home_dcs_come_from_the_region_groups() -> None:
    from tests.conftest import group_hosts, hostvars

    hosts = group_hosts("all")
    assert topology.branch_dcs(hosts, {h: hostvars(h) for h in hosts}) == {
        "A": "Yangon",
        "B": "Mandalay",
        "C": "Naypyitaw",
    }


def test_a_branch_in_two_dcs_is_refused() -> None:
    import pytest

    two = {"x": {"branch": "A", "region": "Yangon"}, "y": {"branch": "A", "region": "Mandalay"}}
    with pytest.raises(ValueError, match="branch A is in two DCs"):
        topology.branch_dcs(list(two), two)
