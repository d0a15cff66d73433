"""The inventory edits of ./lab scale (loadtest.scale_inventory), on the lab's own inventory,
and the Kafka filters its playbooks use (plugins/filter/kafka.py)."""

from __future__ import annotations

import copy
import importlib.util

import pytest
import yaml

from loadtest.scale import Count, Run, Snapshot, render
from loadtest.scale_inventory import ScaleError, marked_to_leave, new_cassandra_node, new_kafka_broker, with_node
from tests.conftest import LAB_INVENTORY, ROOT

spec = importlib.util.spec_from_file_location("kafka_filters", ROOT / "plugins" / "filter" / "kafka.py")
kafka_filters = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kafka_filters)


@pytest.fixture
def lab() -> dict:
    return yaml.safe_load(LAB_INVENTORY.read_text())


def test_the_new_node_follows_the_regions_last_node(lab: dict) -> None:
    node = new_cassandra_node(lab, "Yangon")
    assert (node.name, node.address, node.group, node.host_vars["rack"]) == (
        "cass-a3",
        "10.89.42.15",
        "yangon",
        "rack3",
    )
    assert new_cassandra_node(lab, "Naypyitaw").name == "cass-c3"


def test_the_new_broker_is_a_broker_only_with_the_next_id(lab: dict) -> None:
    broker = new_kafka_broker(lab, "Yangon", taken=["10.89.42.15"])
    assert (broker.name, broker.address, broker.service) == ("kafka-a2", "10.89.42.16", "kafka")
    assert broker.host_vars == {"ansible_host": "10.89.42.16", "kafka_node_id": 4, "kafka_controller": False}


def test_a_taken_address_is_skipped(lab: dict) -> None:
    lab["all"]["children"]["yangon"]["hosts"]["app-a2"] = {"ansible_host": "10.89.42.15"}
    assert new_cassandra_node(lab, "Yangon").address == "10.89.42.16"


def test_an_unknown_region_is_refused(lab: dict) -> None:
    with pytest.raises(ScaleError, match="no region group with region 'Bago' and cassandra nodes"):
        new_cassandra_node(lab, "Bago")


def test_joining_and_marking_leave_the_original_alone(lab: dict) -> None:
    original = copy.deepcopy(lab)
    node = new_cassandra_node(lab, "Mandalay")
    grown = with_node(lab, node)
    assert grown["all"]["children"]["mandalay"]["hosts"]["cass-b3"] == {"ansible_host": "10.89.42.25", "rack": "rack3"}
    assert "cass-b3" in grown["all"]["children"]["cassandra"]["hosts"]
    leaving = marked_to_leave(grown, "cass-b3")
    assert leaving["all"]["children"]["cassandra"]["hosts"]["cass-b3"] == {"cassandra_decommission": True}
    assert marked_to_leave(grown, "kafka-b", "kafka")["all"]["children"]["kafka"]["hosts"]["kafka-b"] == {
        "kafka_decommission": True
    }
    assert lab == original


def test_only_a_member_of_the_service_can_be_marked(lab: dict) -> None:
    with pytest.raises(ScaleError, match="app-a is not in the cassandra group"):
        marked_to_leave(lab, "app-a")


DESCRIBE = """Topic: checkout-sales\tTopicId: x\tPartitionCount: 2\tReplicationFactor: 3\tConfigs: min.insync.replicas=2
\tTopic: checkout-sales\tPartition: 0\tLeader: 1\tReplicas: 1,2,3\tIsr: 1,2,3\tElr: \tLastKnownElr:
\tTopic: checkout-sales\tPartition: 1\tLeader: 4\tReplicas: 4,2,3\tIsr: 4,2,3\tElr: \tLastKnownElr:
\tTopic: __consumer_offsets\tPartition: 0\tLeader: 2\tReplicas: 2,3,1\tIsr: 2,3,1\tElr: \tLastKnownElr:
"""


def test_replica_counts_per_broker_come_from_the_describe_output() -> None:
    assert kafka_filters.kafka_replica_counts(DESCRIBE, ["checkout-sales"]) == {1: 1, 2: 2, 3: 2, 4: 1}
    assert kafka_filters.kafka_replica_counts(DESCRIBE) == {1: 2, 2: 3, 3: 3, 4: 1}


def test_node_ids_and_marks_follow_the_inventory() -> None:
    hostvars = {"k1": {}, "k2": {"kafka_node_id": 7}, "k3": {"kafka_controller": False, "kafka_decommission": "true"}}
    assert kafka_filters.kafka_node_ids(["k1", "k3"], hostvars, ["k1", "k2", "k3"]) == [1, 3]
    assert kafka_filters.kafka_node_ids(["k2"], hostvars, ["k1", "k2"]) == [7]
    assert kafka_filters.kafka_marked(list(hostvars), hostvars, "kafka_controller", False) == ["k3"]
    assert kafka_filters.kafka_marked(list(hostvars), hostvars, "kafka_decommission") == ["k3"]


def test_marks_read_as_ansible_reads_a_boolean() -> None:
    # The tasks test these marks with `| bool`; the filters must agree on every spelling.
    hostvars = {
        "k1": {"kafka_decommission": "on"},
        "k2": {"kafka_decommission": "off"},
        "k3": {"kafka_decommission": 1},
    }
    assert kafka_filters.kafka_marked(list(hostvars), hostvars, "kafka_decommission") == ["k1", "k3"]
    assert kafka_filters.kafka_marked(list(hostvars), hostvars, "kafka_decommission", False) == ["k2"]


def _snapshot(label: str, sales: int, digest: str) -> Snapshot:
    counts = [Count("checkout.sales", "Yangon", sales, digest), Count("checkout-sales", "kafka", 5, "k1")]
    return Snapshot(label, counts, ["UN 10.89.42.11 2 MiB"], {"1": 9})


def test_the_run_passes_only_when_every_count_and_digest_stays() -> None:
    run = Run("Yangon", ["cass-a3 (10.89.42.15)"])
    run.snapshots = [_snapshot("before", 10, "d1"), _snapshot("out", 10, "d1"), _snapshot("in", 10, "d1")]
    assert run.passed and run.changed == []
    assert "PASS: every table and topic holds the same data" in render(run)
    run.snapshots[2] = _snapshot("in", 10, "d2")  # same count, other rows
    assert not run.passed
    assert run.changed == ["checkout.sales in Yangon at 'in': 10 -> 10"]
    assert "FAIL: checkout.sales in Yangon at 'in'" in render(run)


def test_a_failed_step_or_a_missing_snapshot_fails_the_run() -> None:
    run = Run("Yangon", ["cass-a3 (10.89.42.15)"], snapshots=[_snapshot("before", 10, "d1")])
    assert not run.passed and "FAIL: a snapshot is missing" in render(run)
    run.error = "site.yml failed (exit 2)"
    assert "FAIL: site.yml failed (exit 2)" in render(run)
