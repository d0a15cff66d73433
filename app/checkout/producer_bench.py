"""checkout-producer-bench: what one producer setting costs the API, measured on an app node.

Publishes paced records to a bench topic (never the sales topic: the consumer would
dead-letter them) with the API's own producer settings (checkout.producer.make_producer:
acks=all, idempotence), one linger and one hand-over mode per run:

- `thread`: send() in a worker thread (asyncio.to_thread), as the API did;
- `direct`: send() on the event loop, which is safe once the topic's metadata is known
  (send() then only appends to the batch and wakes the producer's I/O thread).

Prints one JSON line: records acked, ack latency p50/p99/max and the process's CPU per
record (every thread: the loop, the worker and the producer's I/O thread). The controller
side (loadtest/producer_bench.py) runs it once per setting and adds the brokers' CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from checkout.config import Settings
from checkout.producer import await_ack, make_producer, send
from checkout.stats import percentile

MODES = ("thread", "direct")


async def publish(producer: Any, topic: str, value: bytes, mode: str, timeout_s: float) -> float:
    started = time.perf_counter()
    if mode == "direct":
        record = send(producer, topic, b"bench", value, [])
    else:
        record = await asyncio.to_thread(send, producer, topic, b"bench", value, [])
    await await_ack(record, timeout_s)
    return (time.perf_counter() - started) * 1000


async def run(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    producer = make_producer(settings, client_id=f"producer-bench-{args.mode}")
    try:
        producer.partitions_for(args.topic)  # metadata first, as the API does at start
        value = b"x" * args.record_size
        for _ in range(20):  # warm the connections and the leaders' batches
            await publish(producer, args.topic, value, args.mode, settings.kafka_publish_timeout_s)
        count = int(args.rate * args.seconds)
        interval = 1.0 / args.rate
        cpu_before, started = time.process_time(), time.perf_counter()
        tasks = []
        for n in range(count):
            # Paced, not closed-loop: shoppers arrive whether or not the last ack is back.
            delay = started + n * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(
                asyncio.create_task(
                    publish(
                        producer, args.topic, value, args.mode, settings.kafka_publish_timeout_s
                    )
                )
            )
        latencies = await asyncio.gather(*tasks)
        cpu_s, wall_s = time.process_time() - cpu_before, time.perf_counter() - started
    finally:
        producer.close(timeout=settings.kafka_publish_timeout_s)
    return {
        "mode": args.mode,
        "linger_ms": settings.kafka_linger_ms,
        "rate": args.rate,
        "records": len(latencies),
        "seconds": round(wall_s, 2),
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "max_ms": round(max(latencies), 2),
        "client_cpu_ms_per_record": round(cpu_s * 1000 / len(latencies), 3),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="checkout-producer-bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--topic", required=True, help="a bench topic, never the sales topic")
    parser.add_argument("--mode", choices=MODES, default="direct")
    parser.add_argument(
        "--linger-ms", type=int, default=None, help="default: the service's setting"
    )
    parser.add_argument("--rate", type=float, default=50.0, help="records per second (paced)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--record-size", type=int, default=900, help="bytes; a sale event is 600-1500"
    )
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.seconds <= 0 or args.record_size <= 0:
        parser.error("--rate, --seconds and --record-size must be positive")
    if args.linger_ms is not None and args.linger_ms < 0:
        parser.error("--linger-ms must be 0 or more")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings()
    if args.topic in (settings.kafka_sales_topic, settings.kafka_dlq_topic):
        print(
            f"refusing to publish bench records to {args.topic}: use a bench topic", file=sys.stderr
        )
        return 2
    if args.linger_ms is not None:
        settings = settings.model_copy(update={"kafka_linger_ms": args.linger_ms})
    print(json.dumps(asyncio.run(run(args, settings))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
