"""How far a consumer group is behind on a topic, from Kafka's own offsets."""

from __future__ import annotations

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from checkout.errors import DependencyUnavailable


def consumer_lag(bootstrap: list[str], group: str, topic: str) -> int:
    """Records of `topic` the group has not committed yet, over every partition (blocking)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            raise DependencyUnavailable(f"topic {topic} not found on {bootstrap}")
        committed = admin.list_group_offsets({group: partitions})[group]
        ends = consumer.end_offsets(partitions)
        # A partition the group never committed counts from its start.
        return sum(
            ends[tp] - max(committed[tp].offset if tp in committed else 0, 0) for tp in partitions
        )
    finally:
        consumer.close()
        admin.close()
