"""Kafka producer for sale events: librdkafka, through confluent-kafka.

Durability: acks=all, so an ack means the in-sync replicas have the event. Throughput:
linger_ms lets the producer batch the concurrent requests of many shoppers; nothing ever
flushes per request. The key is the branch, so one branch's sales share a partition.

Idempotent: librdkafka numbers each partition's records, so a retried send is written
once and in order. After a batch expires (a region cut off for longer than the delivery
timeout) it takes a new producer id and goes on; the region-cut scenario proves it
(docs/chaos.md). The consumer stores a sale by its invoice id in any case.

Why librdkafka and not kafka-python, which the consumer uses: the producer sits on the
checkout's critical path, and its client cost about a third of kafka-python's CPU per
record, with half the ack latency (docs/loadtest.md, "The producer's client").
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future

from confluent_kafka import KafkaError, KafkaException, Message
from confluent_kafka import Producer as Librdkafka

from checkout.config import Settings
from checkout.errors import DependencyUnavailable
from checkout.events import PublishError, SaleEvent

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]
# How often the API's publisher asks the brokers for the sales topic's leaders (readiness).
LEADERS_EVERY_S = 5.0


class ProduceError(Exception):
    """Kafka did not take a record, or did not acknowledge it."""


def event_headers(event: SaleEvent) -> Headers:
    """Type and version travel as headers so a consumer can route before parsing."""
    return [("event-type", event.type.encode()), ("event-version", str(event.version).encode())]


def sale_record(
    event: SaleEvent, *extra_headers: tuple[str, bytes]
) -> tuple[bytes, bytes, Headers]:
    """Key, value and headers of a sale on the sales topic: keyed by branch, the event as
    JSON, its type and version (and any extra) as headers. Every publisher sends this."""
    headers = [*event_headers(event), *extra_headers]
    return event.branch.value.encode(), event.to_json_bytes(), headers


class Producer:
    """librdkafka's producer, and the thread that hands its delivery reports back."""

    def __init__(self, settings: Settings, client_id: str) -> None:
        config = {
            "bootstrap.servers": ",".join(settings.kafka_bootstrap),
            "client.id": client_id,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": settings.kafka_linger_ms,
            # Retries stop when the caller stops waiting; half of it per request leaves
            # room for one retry on another leader after a broker loss.
            "message.timeout.ms": int(settings.kafka_publish_timeout_s * 1000),
            "request.timeout.ms": max(1_000, int(settings.kafka_publish_timeout_s * 500)),
            "logger": log,
        }
        try:
            self._client = Librdkafka(config)
        except KafkaException as error:
            raise DependencyUnavailable(
                f"cannot make a Kafka producer for {config['bootstrap.servers']}: {error}; "
                "check CHECKOUT_KAFKA_BOOTSTRAP"
            ) from error
        self._closing = threading.Event()
        self._reports = threading.Thread(target=self._serve, name=f"{client_id}-acks", daemon=True)
        self._reports.start()

    def _serve(self) -> None:
        # poll() runs the delivery callbacks (and the log) on this thread.
        while not self._closing.is_set():
            self._client.poll(0.1)

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]],
    ) -> Future[None]:
        """Queue a record; the future is done when the brokers acknowledged it, or not."""
        acked: Future[None] = Future()

        def report(error: KafkaError | None, _: Message) -> None:
            if error is None:
                acked.set_result(None)
            else:
                acked.set_exception(ProduceError(f"{topic}: {error.str()}"))

        try:
            self._client.produce(topic, value, key, headers=list(headers), on_delivery=report)
        except (BufferError, KafkaException) as error:
            acked.set_exception(ProduceError(f"{topic}: {error}"))
        return acked

    def leaders(self, topic: str, timeout_s: float) -> tuple[int, int]:
        """The topic's partitions, and how many have a leader, as the brokers say now."""
        try:
            found = self._client.list_topics(topic, timeout=timeout_s).topics.get(topic)
        except KafkaException as error:
            raise ProduceError(f"no metadata for {topic}: {error}") from error
        if found is None or found.error is not None:
            return 0, 0
        return len(found.partitions), sum(p.leader >= 0 for p in found.partitions.values())

    def close(self, timeout: float) -> None:
        """Wait up to timeout for what is still queued, then stop the report thread."""
        self._closing.set()
        self._reports.join()
        left = self._client.flush(timeout)
        if left:
            log.warning("%d Kafka record(s) still unacknowledged at close", left)


def make_producer(settings: Settings, client_id: str) -> Producer:
    return Producer(settings, client_id)


def send(
    producer: Producer,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
) -> Future[None]:
    """Queue a record with the producer; the future tells its ack."""
    return producer.send(topic, key, value, headers)


async def await_ack(record_future: Future[None], timeout_s: float) -> None:
    """Wait for a record's ack from asyncio (the report thread completes the future)."""
    await asyncio.wait_for(asyncio.wrap_future(record_future), timeout_s)


class KafkaEventPublisher:
    """The API's publisher: returns once the brokers acknowledged (acks=all)."""

    def __init__(self, settings: Settings, client_id: str) -> None:
        self._settings = settings
        self._producer = make_producer(settings, client_id)
        topic = settings.kafka_sales_topic
        try:
            # Ask for the topic now: a missing topic or unreachable brokers stop the start
            # with a clear message, and the first checkout does not pay for the metadata.
            self._leaders = self._producer.leaders(topic, timeout_s=5.0)
            if not self._leaders[0]:
                raise ProduceError(f"topic {topic} not found")
        except ProduceError as error:
            self._producer.close(timeout=0)
            raise DependencyUnavailable(
                f"no metadata for topic {topic} from Kafka at "
                f"{','.join(settings.kafka_bootstrap)}: {error}; check that the brokers are up "
                "and the topic exists (roles/kafka creates it)"
            ) from error
        self._closing = threading.Event()
        self._watch = threading.Thread(
            target=self._watch_leaders, name="kafka-leaders", daemon=True
        )
        self._watch.start()

    def _watch_leaders(self) -> None:
        # Its own thread: a metadata request can wait seconds while brokers are away, and
        # must hold up neither the event loop (ready()) nor the delivery reports.
        topic = self._settings.kafka_sales_topic
        while not self._closing.wait(LEADERS_EVERY_S):
            try:
                self._leaders = self._producer.leaders(topic, timeout_s=LEADERS_EVERY_S)
            except ProduceError as error:
                log.warning("%s", error)
                self._leaders = (self._leaders[0], 0)

    async def publish(self, event: SaleEvent) -> None:
        topic = self._settings.kafka_sales_topic
        timeout_s = self._settings.kafka_publish_timeout_s
        try:
            # produce() only queues the record, so it runs on the loop: no thread hop.
            await await_ack(send(self._producer, topic, *sale_record(event)), timeout_s)
        except TimeoutError as error:
            raise PublishError(f"no ack from Kafka for {topic} within {timeout_s}s") from error
        except ProduceError as error:
            raise PublishError(f"Kafka refused the event: {error}") from error

    def ready(self) -> None:
        """Every partition of the sales topic had a leader at the last look (at most
        LEADERS_EVERY_S ago)."""
        partitions, led = self._leaders
        if not partitions or led != partitions:
            raise DependencyUnavailable(
                f"{led} of {partitions} partitions of {self._settings.kafka_sales_topic} have "
                f"a leader at {','.join(self._settings.kafka_bootstrap)}"
            )

    def close(self) -> None:
        self._closing.set()
        self._watch.join()
        # close() flushes what is still queued before the process exits.
        self._producer.close(timeout=self._settings.kafka_publish_timeout_s)
