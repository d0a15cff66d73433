"""The Kafka producer and the API's publisher, over a stand-in for librdkafka."""

import asyncio
import threading
import time
from typing import Any

import pytest

from checkout import producer as producer_module
from checkout import producer_bench
from checkout.config import Settings
from checkout.dataset import DatasetRow
from checkout.errors import DependencyUnavailable
from checkout.events import PublishError, event_from_row
from checkout.producer import KafkaEventPublisher, ProduceError, Producer


class FakeError:
    """librdkafka's KafkaError as a delivery report carries it."""

    def str(self) -> str:
        return "Local: Message timed out"


class FakeLibrdkafka:
    """confluent_kafka.Producer: records what it was given, acks as told."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.ack: FakeError | str | None = None  # None: ack at once; "never": no report
        self.produced_on: list[int] = []

    def poll(self, timeout: float) -> int:
        time.sleep(timeout / 10)
        return 0

    def produce(self, topic: str, value: bytes, key: bytes, **kwargs: Any) -> None:
        self.produced_on.append(threading.get_ident())
        if self.ack != "never":
            kwargs["on_delivery"](self.ack, None)

    def flush(self, timeout: float) -> int:
        return 0


class FakeProducer:
    """checkout.producer.Producer with the topic's leaders set by the test."""

    def __init__(self, leaders: tuple[int, int] | None) -> None:
        self.leaders_now = leaders
        self.closed = False

    def leaders(self, topic: str, timeout_s: float) -> tuple[int, int]:
        if self.leaders_now is None:
            raise ProduceError(f"no metadata for {topic}: Local: Broker transport failure")
        return self.leaders_now

    def close(self, timeout: float) -> None:
        self.closed = True


def _publisher(monkeypatch: pytest.MonkeyPatch, fake: Any) -> KafkaEventPublisher:
    monkeypatch.setattr(producer_module, "make_producer", lambda settings, client_id: fake)
    return KafkaEventPublisher(Settings(), client_id="test")


def _librdkafka(monkeypatch: pytest.MonkeyPatch) -> FakeLibrdkafka:
    made: list[FakeLibrdkafka] = []

    def make(config: dict[str, Any]) -> FakeLibrdkafka:
        made.append(FakeLibrdkafka(config))
        return made[-1]

    monkeypatch.setattr(producer_module, "Librdkafka", make)
    producer = Producer(Settings(), client_id="test")
    monkeypatch.setattr(producer, "leaders", lambda topic, timeout_s: (3, 3))
    monkeypatch.setattr(producer_module, "make_producer", lambda settings, client_id: producer)
    return made[0]


def test_ready_when_every_partition_has_a_leader(monkeypatch: pytest.MonkeyPatch) -> None:
    publisher = _publisher(monkeypatch, FakeProducer((3, 3)))
    publisher.ready()
    publisher.close()


def test_not_ready_once_a_partition_lost_its_leader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(producer_module, "LEADERS_EVERY_S", 0.01)
    fake = FakeProducer((3, 3))
    publisher = _publisher(monkeypatch, fake)
    fake.leaders_now = (3, 2)
    time.sleep(0.2)
    with pytest.raises(DependencyUnavailable, match="2 of 3 partitions of checkout-sales"):
        publisher.ready()
    fake.leaders_now = None  # brokers unreachable: not ready either
    time.sleep(0.2)
    with pytest.raises(DependencyUnavailable, match="0 of 3 partitions"):
        publisher.ready()
    publisher.close()


@pytest.mark.parametrize("leaders", [None, (0, 0)], ids=["unreachable", "no topic"])
def test_no_kafka_or_no_topic_stops_the_start_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, leaders: tuple[int, int] | None
) -> None:
    fake = FakeProducer(leaders)
    with pytest.raises(DependencyUnavailable, match="no metadata for topic checkout-sales"):
        _publisher(monkeypatch, fake)
    assert fake.closed


def test_the_producer_is_idempotent_and_waits_for_all_replicas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = _librdkafka(monkeypatch).config
    assert config["enable.idempotence"] is True
    assert config["acks"] == "all"
    assert config["message.timeout.ms"] == Settings().kafka_publish_timeout_s * 1000


def test_publish_queues_on_the_loop_and_returns_once_acked(
    monkeypatch: pytest.MonkeyPatch, dataset_rows: list[DatasetRow]
) -> None:
    client = _librdkafka(monkeypatch)
    publisher = KafkaEventPublisher(Settings(), client_id="test")

    async def publish() -> int:
        await publisher.publish(event_from_row(dataset_rows[0]))
        return threading.get_ident()

    assert client.produced_on == [asyncio.run(publish())]
    publisher.close()


@pytest.mark.parametrize(
    ("ack", "message"),
    [(FakeError(), "Kafka refused the event: checkout-sales: Local: Message timed out"),
     ("never", "no ack from Kafka for checkout-sales within 0.2s")],
    ids=["refused", "silent"],
)  # fmt: skip
def test_a_refused_or_missing_ack_is_a_publish_error(
    monkeypatch: pytest.MonkeyPatch, dataset_rows: list[DatasetRow], ack: Any, message: str
) -> None:
    monkeypatch.setenv("CHECKOUT_KAFKA_PUBLISH_TIMEOUT_S", "0.2")
    client = _librdkafka(monkeypatch)
    client.ack = ack
    publisher = KafkaEventPublisher(Settings(), client_id="test")
    with pytest.raises(PublishError, match=message):
        asyncio.run(publisher.publish(event_from_row(dataset_rows[0])))
    publisher.close()


def test_a_full_queue_is_a_produce_error(monkeypatch: pytest.MonkeyPatch) -> None:
    client = _librdkafka(monkeypatch)

    def full(*args: Any, **kwargs: Any) -> None:
        raise BufferError("Local: Queue full")

    monkeypatch.setattr(client, "produce", full)
    producer = producer_module.make_producer(Settings(), client_id="test")
    with pytest.raises(ProduceError, match="Queue full"):
        producer.send("t", b"k", b"v", []).result(timeout=1)
    producer.close(timeout=1)


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
