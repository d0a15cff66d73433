"""Bad inventory input stops site.yml in preflight, with a message naming the host and
the fix, before anything changes on any host."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import LAB_INVENTORY, LAB_KEY, run

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.usefixtures("lab_is_up")]


def _site(inventory: Path, extra_vars: dict | None = None):
    cmd = ["ansible-playbook", "-i", str(inventory), "site.yml", "-e", f"ansible_ssh_private_key_file={LAB_KEY}"]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    return run(cmd, timeout=600)


def _assert_stopped_unchanged(result, message: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert re.search(message, output), output[-3000:]
    changed = re.findall(r"changed=(\d+)", output)
    assert changed and all(c == "0" for c in changed), output[-3000:]
    # Only preflight ran: no play after it started.
    assert "Install the OS prerequisites" not in output


@pytest.fixture
def inventory_without_region(tmp_path: Path) -> Path:
    shutil.copytree(LAB_INVENTORY.parent, tmp_path / "lab")
    hosts = tmp_path / "lab" / "hosts.yml"
    data = yaml.safe_load(hosts.read_text())
    del data["all"]["children"]["mandalay"]["vars"]["region"]
    hosts.write_text(yaml.safe_dump(data))
    return hosts


def test_host_without_region(inventory_without_region: Path) -> None:
    result = _site(inventory_without_region)
    _assert_stopped_unchanged(result, r"cass-b1 has no region\. Put it in a region group")


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        (
            {"cassandra_replication_factors": {"Yangon": 3, "Mandalay": 2, "Naypyitaw": 2}},
            r"DC Yangon has replication factor 3 but 2 Cassandra node\(s\)",
        ),
        ({"cassandra_heap_size_mb": 10_000_000}, r"cassandra_heap_size_mb=10000000 does not fit"),
        ({"kafka_heap_size_mb": 10_000_000}, r"kafka_heap_size_mb=10000000 does not fit"),
        ({"cassandra_concurrent_writes": 0}, r"cassandra_concurrent_writes=0: a request stage needs"),
        ({"cassandra_jvm_extra_options": ["-Xss512k -ea"]}, r"cassandra_jvm_extra_options must hold one JVM flag"),
        ({"cassandra_timer_slack_us": -1}, r"cassandra_timer_slack_us=-1: the timer slack must be"),
        ({"cassandra_decommission": True}, r"cassandra_decommission is set on \[.*'cass-a1'.*\]: a seed cannot leave"),
        ({"cassandra_version": "4.1.5"}, r"cassandra_version 4\.1\.5 is not supported"),
        ({"cassandra_repair_start_hour": 24}, r"cassandra_repair_start_hour must be an hour 0-23"),
        ({"checkout_app_reconcile_older_than_min": 0}, r"checkout_app_reconcile_older_than_min=0: both must be"),
        ({"checkout_app_region_standby_replicas": 4}, r"checkout_app_region_standby_replicas=4: give 0"),
        ({"kafka_version": "3.7.0"}, r"kafka_version 3\.7\.0 is not supported"),
        ({"kafka_decommission": True}, r"kafka_decommission is set on controller\(s\) \[.*'kafka-a'.*\]: the"),
        ({"kafka_node_id": 1}, r"Kafka node IDs must be unique; found \{'kafka-a': 1, 'kafka-b': 1, 'kafka-c': 1\}"),
    ],
    ids=[
        "rf-above-dc-size",
        "cassandra-heap",
        "kafka-heap",
        "cassandra-threads",
        "cassandra-jvm-options",
        "cassandra-timer-slack",
        "cassandra-decommission-seed",
        "cassandra-version",
        "cassandra-repair-hour",
        "reconcile-age",
        "standby-replicas",
        "kafka-version",
        "kafka-decommission-controller",
        "kafka-node-ids",
    ],
)
def test_bad_variable_stops_in_preflight(extra_vars: dict, message: str) -> None:
    _assert_stopped_unchanged(_site(LAB_INVENTORY, extra_vars), message)
