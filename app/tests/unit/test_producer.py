"""Readiness of the API's Kafka publisher, over a stand-in for kafka-python's producer."""

import asyncio
import threading
from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError

from checkout import producer as producer_module
from checkout import producer_bench
from checkout.config import Settings
from checkout.dataset import DatasetRow
from checkout.errors import DependencyUnavailable
from checkout.events import event_from_row
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


class AckedAtOnce:
    """A kafka-python record future whose ack has already arrived."""

    def add_callback(self, callback: Any) -> None:
        callback(None)

    def add_errback(self, errback: Any) -> None:
        return None


class SendingProducer(FakeProducer):
    def __init__(self, leaders: dict[int, int]) -> None:
        super().__init__(leaders)
        self.send_threads: list[int] = []

    def send(self, topic: str, **_: Any) -> AckedAtOnce:
        self.send_threads.append(threading.get_ident())
        return AckedAtOnce()


@pytest.mark.parametrize(("leaders", "on_the_loop"), [({0: 1}, True), ({}, False)])
def test_send_runs_on_the_loop_only_once_the_topic_is_known(
    monkeypatch: pytest.MonkeyPatch,
    dataset_rows: list[DatasetRow],
    leaders: dict[int, int],
    on_the_loop: bool,
) -> None:
    fake = SendingProducer({0: 1})
    publisher = _publisher(monkeypatch, fake)
    fake._metadata.leaders = leaders  # metadata known, or lost since the start

    async def publish() -> int:
        await publisher.publish(event_from_row(dataset_rows[0]))
        return threading.get_ident()

    loop_thread = asyncio.run(publish())
    assert (fake.send_threads == [loop_thread]) is on_the_loop


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--topic", "t", "--rate", "0"], "must be positive"),
        (["--topic", "t", "--linger-ms", "-1"], "0 or more"),
        (["--topic", "t", "--mode", "fork"], "invalid choice"),
        ([], "--topic"),
    ],
)
def test_the_producer_bench_refuses_bad_flags(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        producer_bench.parse_args(argv)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def test_the_producer_bench_never_publishes_to_the_sales_topic(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert producer_bench.main(["--topic", Settings().kafka_sales_topic]) == 2
    assert "use a bench topic" in capsys.readouterr().err


def test_producer_is_not_idempotent_but_waits_for_all_replicas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """kafka-python 3.0.12's idempotent producer stays stuck after an expired batch (the
    region cut in docs/chaos.md); the lab's region-cut scenario proves the recovery."""
    made: dict[str, Any] = {}
    monkeypatch.setattr(producer_module, "KafkaProducer", lambda **config: made.update(config))
    producer_module.make_producer(Settings(), client_id="test")
    assert made["enable_idempotence"] is False
    assert made["acks"] == "all"
