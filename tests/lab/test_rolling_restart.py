"""A configuration change restarts only the nodes it touches, one at a time, each gated
on the cluster being healthy; the play ends with the cluster healthy again."""

from __future__ import annotations

import re

import pytest

from tests.conftest import group_hosts, run

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.usefixtures("lab_is_up")]


def _play(playbook: str, *args: str) -> str:
    result = run(["ansible-playbook", playbook, *args], timeout=1500)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    return output


def _task_order(output: str) -> list[str]:
    return re.findall(r"^TASK \[kafka : (.+?)\]", output, flags=re.MULTILINE)


@pytest.fixture
def retention_change():
    yield ["-e", "kafka_log_retention_hours=169"]
    # Put the lab back: this restarts the brokers once more, again one at a time.
    _play("playbooks/kafka.yml")


def test_kafka_brokers_restart_one_at_a_time_in_sync(retention_change) -> None:
    output = _play("playbooks/kafka.yml", *retention_change)
    order = _task_order(output)
    brokers = group_hosts("kafka")
    restart = "Restart Kafka with its new configuration on "
    restarts = [i for i, task in enumerate(order) if task.startswith(restart)]
    assert [order[i].removeprefix(restart).removesuffix(".") for i in restarts] == brokers, order
    for broker, index in zip(brokers, restarts, strict=True):
        # Each restart is preceded by an in-sync check and followed by its own catch-up check.
        assert order[index - 1].startswith("Wait until no partition is under-replicated"), order
        assert f"Wait until no partition is under-replicated, as seen from {broker}." in order[index + 2 :], order


def test_cassandra_restarts_only_the_changed_node() -> None:
    node = group_hosts("cassandra")[1]
    try:
        output = _play("playbooks/cassandra.yml", "--limit", node, "-e", "cassandra_ring_delay_ms=4000")
        restarted = re.findall(
            r"^TASK \[cassandra : Start Cassandra, or restart it with its new configuration, on (\S+)\.\]",
            output,
            re.MULTILINE,
        )
        assert restarted == [node], restarted
        assert re.search(rf"TASK \[cassandra : Wait until nodetool status shows UN \(up, normal\) for {node}\.", output)
    finally:
        _play("playbooks/cassandra.yml", "--limit", node)
