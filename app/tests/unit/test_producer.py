"""Readiness of the API's Kafka publisher, over a stand-in for kafka-python's producer."""

from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError

from checkout import producer as producer_module
from checkout.config import Settings
from checkout.errors import DependencyUnavailable
from checkout.producer import KafkaEventPublisher


class FakeMetadata:
    def __init__(self, leaders: dict[int, int]) -> None:
        self.leaders = leaders

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return set(self.leaders) if self.leaders else None

    def available_partitions_for_topic(self, topic: str) -> set[int] | None:
        return {p for p, leader in self.leaders.items() if leader != -1} or None


class FakeProducer:
    def __init__(self, leaders: dict[int, int], reachable: bool = True) -> None:
        self._metadata = FakeMetadata(leaders)
        self.reachable = reachable
        self.closed = False

    def partitions_for(self, topic: str) -> set[int] | None:
        if not self.reachable:
            raise KafkaTimeoutError("Failed to update metadata after 5.0 secs.")
        return self._metadata.partitions_for_topic(topic)

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


def _publisher(monkeypatch: pytest.MonkeyPatch, fake: FakeProducer) -> KafkaEventPublisher:
    def make(settings: Settings, client_id: str) -> Any:
        return fake

    monkeypatch.setattr(producer_module, "make_producer", make)
    return KafkaEventPublisher(Settings(), client_id="test")


def test_ready_when_every_partition_has_a_leader(monkeypatch: pytest.MonkeyPatch) -> None:
    _publisher(monkeypatch, FakeProducer({0: 1, 1: 2, 2: 3})).ready()


def test_not_ready_while_a_partition_has_no_leader(monkeypatch: pytest.MonkeyPatch) -> None:
    publisher = _publisher(monkeypatch, FakeProducer({0: 1, 1: -1, 2: 3}))
    with pytest.raises(DependencyUnavailable, match="2 of 3 partitions of checkout-sales"):
        publisher.ready()


def test_unreachable_kafka_stops_the_start_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeProducer({}, reachable=False)
    with pytest.raises(DependencyUnavailable, match="no metadata for topic checkout-sales"):
        _publisher(monkeypatch, fake)
    assert fake.closed
