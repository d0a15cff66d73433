"""Kafka producer for sale events.

Durability: acks=all, so an ack means the in-sync replicas have the event. Throughput:
linger_ms lets the producer batch the concurrent requests of many shoppers; nothing ever
flushes per request. The key is the branch, so one branch's sales share a partition.

Not idempotent, on purpose. kafka-python 3.0.12's idempotent producer never recovers from
an expired batch (a region cut off for longer than the delivery timeout): it drops its
producer id, stays in state READY, never asks for a new id, and its sender sends nothing
without one, so every later publish times out until the process restarts (docs/chaos.md).
A retried send may therefore write a sale twice, or out of order, in the log. Nothing
depends on either: the consumer stores a sale by its invoice id, so a duplicate rewrites
the same row, and stock moves in the API, keyed by the invoice, not from the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from checkout.config import Settings
from checkout.errors import DependencyUnavailable
from checkout.events import PublishError, SaleEvent

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]


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


def make_producer(settings: Settings, client_id: str) -> Any:
    try:
        return KafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id=client_id,
            acks="all",
            # See the module's docstring: duplicates are harmless, a stuck producer is not.
            enable_idempotence=False,
            max_in_flight_requests_per_connection=5,
            linger_ms=settings.kafka_linger_ms,
            # Retries stop when the caller stops waiting; half of it per request leaves
            # room for one retry on another leader after a broker loss.
            delivery_timeout_ms=int(settings.kafka_publish_timeout_s * 1000),
            request_timeout_ms=max(1_000, int(settings.kafka_publish_timeout_s * 500)),
            # send() must not stall the event loop for long when metadata is missing.
            max_block_ms=5_000,
        )
    except KafkaError as error:
        raise DependencyUnavailable(
            f"cannot reach Kafka at {','.join(settings.kafka_bootstrap)}: {error}; "
            "check CHECKOUT_KAFKA_BOOTSTRAP and that the brokers are up"
        ) from error


def send(
    producer: Any,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
) -> Any:
    """Hand a record to the producer's buffer; returns the kafka-python future."""
    return producer.send(topic, key=key, value=value, headers=list(headers))


async def await_ack(record_future: Any, timeout_s: float) -> None:
    """Wait for a kafka-python future from asyncio: its callbacks run on the producer's
    I/O thread, so they hand the result to the loop thread-safely."""
    loop = asyncio.get_running_loop()
    acked: asyncio.Future[None] = loop.create_future()

    def done(_: Any) -> None:
        if not acked.done():
            acked.set_result(None)

    def failed(error: BaseException) -> None:
        if not acked.done():
            acked.set_exception(error)

    record_future.add_callback(lambda metadata: loop.call_soon_threadsafe(done, metadata))
    record_future.add_errback(lambda error: loop.call_soon_threadsafe(failed, error))
    await asyncio.wait_for(acked, timeout_s)


class KafkaEventPublisher:
    """The API's publisher: returns once the brokers acknowledged (acks=all)."""

    def __init__(self, settings: Settings, client_id: str) -> None:
        self._settings = settings
        self._producer = make_producer(settings, client_id)
        topic = settings.kafka_sales_topic
        try:
            # Fetch the topic's metadata now: the first checkout does not pay for it, a
            # missing topic stops the start with a clear message, and ready() has
            # something to look at (the producer is otherwise lazy).
            self._producer.partitions_for(topic)
        except KafkaError as error:
            self._producer.close(timeout=0)
            raise DependencyUnavailable(
                f"no metadata for topic {topic} from Kafka at "
                f"{','.join(settings.kafka_bootstrap)}: {error}; check that the brokers are up "
                "and the topic exists (roles/kafka creates it)"
            ) from error

    async def publish(self, event: SaleEvent) -> None:
        topic = self._settings.kafka_sales_topic
        args = (self._producer, topic, *sale_record(event))
        try:
            if self._producer._metadata.partitions_for_topic(topic):
                # Metadata known: send() only appends to a batch, so it runs on the loop.
                # The hop to a worker thread cost more CPU than the send itself
                # (checkout-producer-bench, docs/loadtest.md).
                record = send(*args)
            else:
                # send() would block on a metadata fetch: keep that off the event loop.
                record = await asyncio.to_thread(send, *args)
            await await_ack(record, self._settings.kafka_publish_timeout_s)
        except TimeoutError as error:
            raise PublishError(
                f"no ack from Kafka for {topic} within {self._settings.kafka_publish_timeout_s}s"
            ) from error
        except KafkaError as error:
            raise PublishError(f"Kafka refused the event for {topic}: {error}") from error

    def ready(self) -> None:
        """Every partition of the sales topic has a leader in the producer's metadata.

        (kafka-python's bootstrap_connected() is true only while the first metadata
        request is in flight, so it cannot tell readiness.)"""
        topic = self._settings.kafka_sales_topic
        cluster = self._producer._metadata  # ClusterMetadata, kept fresh by the I/O thread
        partitions = cluster.partitions_for_topic(topic) or set()
        led = cluster.available_partitions_for_topic(topic) or set()
        if not partitions or led != partitions:
            raise DependencyUnavailable(
                f"{len(led)} of {len(partitions)} partitions of {topic} have a leader at "
                f"{','.join(self._settings.kafka_bootstrap)}"
            )

    def close(self) -> None:
        # close() flushes what is still buffered before the process exits.
        self._producer.close(timeout=self._settings.kafka_publish_timeout_s)
