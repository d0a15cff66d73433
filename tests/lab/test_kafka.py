"""Kafka in the lab: three brokers in three racks (regions), every partition of the
checkout topics fully in sync, and a message round-trips with acks=all."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import yaml
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient

from tests.conftest import ROOT, address, group_hosts, hostvars

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("lab_is_up")]

BROKERS = group_hosts("kafka")
BOOTSTRAP = [f"{address(b)}:9092" for b in BROKERS]
TOPICS = ["checkout-sales", "checkout-sales-dlq"]


@pytest.fixture(scope="module")
def admin():
    client = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    yield client
    client.close()


def test_three_brokers_one_per_region(admin) -> None:
    cluster = admin.describe_cluster()
    racks = sorted(b["rack"] for b in cluster["brokers"])
    assert racks == sorted(hostvars(b)["region"] for b in BROKERS)


@pytest.mark.parametrize("topic", TOPICS)
def test_every_partition_is_fully_in_sync_on_three_brokers(admin, topic: str) -> None:
    (described,) = admin.describe_topics([topic])
    assert described["partitions"], described
    for partition in described["partitions"]:
        assert len(partition["replica_nodes"]) == 3, partition
        assert sorted(partition["isr_nodes"]) == sorted(partition["replica_nodes"]), partition
        assert partition["leader_id"] in partition["replica_nodes"], partition


@pytest.mark.parametrize("topic", TOPICS)
def test_topic_is_durable(admin, topic: str) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType

    configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all")
    values = {k: v["value"] for k, v in configs["topic"][topic].items()}
    assert values["min.insync.replicas"] == "2"
    assert values["unclean.leader.election.enable"] == "false"


def _kafka_variable(name: str) -> Any:
    """A kafka role variable as the deploy sees it: the inventory's value, else the default."""
    defaults = yaml.safe_load((ROOT / "roles" / "kafka" / "defaults" / "main.yml").read_text())
    return hostvars(BROKERS[0]).get(name, defaults[name])


def test_retention_is_what_the_variables_say(admin) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType

    topics = _kafka_variable("kafka_topics")
    assert topics, "kafka_topics is empty"
    described = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, t["name"]) for t in topics], config_filter="all"
    )
    for topic in topics:
        wanted = (topic.get("config") or {}).get("retention.ms")
        actual = described["topic"][topic["name"]]["retention.ms"]
        assert wanted is not None, f"{topic['name']} has no retention.ms of its own"
        assert (actual["value"], actual["config_source"]) == (str(wanted), "DYNAMIC_TOPIC_CONFIG"), actual
    # Topics without their own retention fall back to the brokers' log.retention.hours.
    hours = str(_kafka_variable("kafka_log_retention_hours"))
    for broker in BROKERS:
        node_id = str(hostvars(broker)["kafka_node_id"])
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, node_id)], config_filter="all")
        assert configs["broker"][node_id]["log.retention.hours"]["value"] == hours, broker


def test_message_round_trip_with_acks_all(admin) -> None:
    topic = f"lab-verify-{uuid.uuid4().hex[:8]}"
    admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 3}}, wait_for_metadata=True)
    try:
        payload = uuid.uuid4().bytes
        producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", enable_idempotence=True)
        producer.send(topic, payload).get(timeout=30)
        producer.close()
        consumer = KafkaConsumer(
            topic, bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest", consumer_timeout_ms=20000
        )
        received = [m.value for m in consumer]
        consumer.close()
        assert payload in received
    finally:
        admin.delete_topics([topic])
