"""Consumer service: sale events from Kafka into Cassandra, at least once, no duplicates.

Offsets are committed only after every event of a polled batch was written (or sent to
the dead-letter topic), so a crash or a Cassandra outage replays the batch; the writes
are keyed by invoice id, so a replay overwrites rows with themselves. A message that can
never be stored (not JSON, not a valid event, refused by Cassandra) goes to the
dead-letter topic with the reason in its headers instead of blocking its partition.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from kafka import KafkaConsumer
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client import start_http_server
from pydantic import ValidationError

from checkout import metrics
from checkout.adapters.cassandra.sales import CassandraSaleWriter
from checkout.adapters.cassandra.session import Cassandra
from checkout.config import Settings, get_settings
from checkout.errors import DependencyUnavailable, RequestRejected
from checkout.events import PublishError, SaleEvent
from checkout.producer import await_ack, make_producer, send

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_MAX_BACKOFF_S = 30.0


@dataclass(frozen=True, slots=True)
class Consumed:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Poison:
    reason: str
    detail: str


class SaleWriter(Protocol):
    async def write(self, events: Sequence[SaleEvent]) -> None: ...


class DeadLetterSink(Protocol):
    async def send(self, record: Consumed, poison: Poison) -> None:
        """Return once the dead letter is durably stored."""
        ...


def decode(record: Consumed) -> SaleEvent | Poison:
    if not record.value:
        return Poison("empty_message", "the message has no value")
    try:
        return SaleEvent.from_json_bytes(record.value)
    except ValidationError as error:
        first = error.errors()[0]
        if first["type"] == "json_invalid":
            return Poison("malformed_json", str(first["msg"]))
        if tuple(first["loc"]) in {("type",), ("version",)}:
            return Poison("unsupported_event", f"{first['loc'][0]}: {first['msg']}")
        fields = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'event'}: {e['msg']}" for e in error.errors()
        )
        return Poison("invalid_event", fields)


def next_offsets(records: Sequence[Consumed]) -> dict[tuple[str, int], int]:
    """Offsets to commit: one past the last record of each partition."""
    offsets: dict[tuple[str, int], int] = {}
    for record in records:
        tp = (record.topic, record.partition)
        offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)
    return offsets


class SalesPipeline:
    """What one polled batch becomes: rows in Cassandra, dead letters, offsets to commit."""

    def __init__(self, writer: SaleWriter, dead_letters: DeadLetterSink) -> None:
        self._writer = writer
        self._dead_letters = dead_letters

    async def _dead_letter(self, record: Consumed, poison: Poison) -> None:
        log.warning(
            "dead-lettering %s/%d@%d: %s (%s)",
            record.topic,
            record.partition,
            record.offset,
            poison.reason,
            poison.detail,
        )
        await self._dead_letters.send(record, poison)
        metrics.DEAD_LETTERS.labels(poison.reason).inc()

    async def process(self, records: Sequence[Consumed]) -> dict[tuple[str, int], int]:
        """Raise DependencyUnavailable/PublishError to have the whole batch retried."""
        good: list[tuple[Consumed, SaleEvent]] = []
        for record in records:
            decoded = decode(record)
            if isinstance(decoded, Poison):
                await self._dead_letter(record, decoded)
            else:
                good.append((record, decoded))
        if good:
            started = time.perf_counter()
            try:
                await self._writer.write([event for _, event in good])
            except RequestRejected:
                # Something in the batch is unstorable: find it by writing one at a time.
                for record, event in good:
                    try:
                        await self._writer.write([event])
                    except RequestRejected as error:
                        await self._dead_letter(record, Poison("write_rejected", str(error)))
            metrics.CONSUMER_WRITE_LATENCY.observe(time.perf_counter() - started)
            metrics.CONSUMER_ROWS_WRITTEN.inc(len(good))
        return next_offsets(records)


class KafkaDeadLetters:
    def __init__(self, producer: Any, settings: Settings) -> None:
        self._producer = producer
        self._topic = settings.kafka_dlq_topic
        self._group = settings.kafka_consumer_group
        self._timeout_s = settings.kafka_publish_timeout_s

    async def send(self, record: Consumed, poison: Poison) -> None:
        headers = [
            *record.headers,
            ("dlq-reason", poison.reason.encode()),
            ("dlq-detail", poison.detail[:1000].encode()),
            ("dlq-source", f"{record.topic}/{record.partition}/{record.offset}".encode()),
            ("dlq-consumer-group", self._group.encode()),
        ]
        try:
            future = await asyncio.to_thread(
                send, self._producer, self._topic, record.key, record.value, headers
            )
            await await_ack(future, self._timeout_s)
        except (TimeoutError, KafkaError) as error:
            raise PublishError(f"dead-letter topic {self._topic} did not ack: {error}") from error


def make_consumer(settings: Settings, group_id: str, client_id: str) -> Any:
    try:
        return KafkaConsumer(
            settings.kafka_sales_topic,
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=group_id,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.kafka_max_poll_records,
        )
    except KafkaError as error:
        raise DependencyUnavailable(
            f"cannot reach Kafka at {','.join(settings.kafka_bootstrap)}: {error}; "
            "check CHECKOUT_KAFKA_BOOTSTRAP and that the brokers are up"
        ) from error


def poll(consumer: Any, timeout_ms: int) -> list[Consumed]:
    batches = consumer.poll(timeout_ms=timeout_ms)
    return [
        Consumed(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers or ()))
        for records in batches.values()
        for r in records
    ]


class KafkaSalesConsumer:
    """The poll -> write -> commit loop. Every KafkaConsumer call runs on one dedicated
    thread (the client is not thread-safe); Cassandra writes run on the event loop."""

    def __init__(
        self, settings: Settings, consumer: Any, pipeline: SalesPipeline, stop: asyncio.Event
    ) -> None:
        self._settings = settings
        self._consumer = consumer
        self._pipeline = pipeline
        self._stop = stop
        self._kafka_thread = ThreadPoolExecutor(1, thread_name_prefix="kafka-consumer")
        self._lag_labels: set[tuple[str, str]] = set()

    async def _on_kafka_thread(self, call: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._kafka_thread, call, *args)

    def _rewind(self, records: Sequence[Consumed]) -> None:
        first: dict[tuple[str, int], int] = {}
        for r in records:
            tp = (r.topic, r.partition)
            first[tp] = min(first.get(tp, r.offset), r.offset)
        for (topic, partition), offset in first.items():
            self._consumer.seek(TopicPartition(topic, partition), offset)

    def _commit(self, offsets: dict[tuple[str, int], int]) -> None:
        try:
            self._consumer.commit(
                {
                    TopicPartition(t, p): OffsetAndMetadata(o, "", -1)
                    for (t, p), o in offsets.items()
                }
            )
        except KafkaError as error:
            # A rebalance moved the partitions: their new owner re-reads from the last
            # commit and rewrites the same rows, which is harmless.
            log.warning("offset commit failed (%s); the batch will be re-read", error)

    def _export_lag(self) -> None:
        labels: set[tuple[str, str]] = set()
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            if highwater is None:
                continue
            label = (tp.topic, str(tp.partition))
            metrics.CONSUMER_LAG.labels(*label).set(highwater - self._consumer.position(tp))
            labels.add(label)
        for stale in self._lag_labels - labels:
            metrics.CONSUMER_LAG.remove(*stale)
        self._lag_labels = labels

    async def run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            records = await self._on_kafka_thread(poll, self._consumer, 1000)
            if records:
                try:
                    offsets = await self._pipeline.process(records)
                except (DependencyUnavailable, PublishError) as error:
                    log.warning("batch not stored (%s); retrying in %.1fs", error, backoff)
                    await self._on_kafka_thread(self._rewind, records)
                    await self._sleep_unless_stopped(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF_S)
                    continue
                backoff = 0.5
                await self._on_kafka_thread(self._commit, offsets)
            await self._on_kafka_thread(self._export_lag)

    async def _sleep_unless_stopped(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            return

    def close(self) -> None:
        # Everything processed was committed by run(); nothing half-done is committed here.
        self._consumer.close(autocommit=False)
        self._kafka_thread.shutdown(wait=True)


async def _serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    db = Cassandra(settings)
    dlq_producer = make_producer(settings, client_id=f"checkout-consumer-dlq-{settings.region}")
    try:
        pipeline = SalesPipeline(
            CassandraSaleWriter(db, settings.cassandra_write_concurrency),
            KafkaDeadLetters(dlq_producer, settings),
        )
        consumer = make_consumer(
            settings, settings.kafka_consumer_group, f"checkout-consumer-{settings.region}"
        )
        service = KafkaSalesConsumer(settings, consumer, pipeline, stop)
        log.info(
            "consuming %s as group %s into keyspace %s (consistency %s)",
            settings.kafka_sales_topic,
            settings.kafka_consumer_group,
            settings.cassandra_keyspace,
            settings.cassandra_consistency,
        )
        try:
            await service.run()
        finally:
            service.close()
    finally:
        dlq_producer.close(timeout=settings.kafka_publish_timeout_s)
        db.close()
    log.info("stopped after committing the offsets of every stored batch")


def main() -> int:
    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    metrics.SERVICE_INFO.info({"service": "consumer", "region": settings.region})
    start_http_server(settings.consumer_metrics_port)
    try:
        asyncio.run(_serve(settings))
    except DependencyUnavailable as error:
        print(f"checkout-consumer: {error}", file=sys.stderr)
        return 1
    return 0
