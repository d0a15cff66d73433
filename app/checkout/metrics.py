"""Prometheus metrics of the checkout services.

The names are a contract with the alert rules and the console page: change them there too.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

# Checkout latency is dominated by the payment gateway (~80 ms) and the Kafka ack.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1, 2.5, 5, 10)

HTTP_REQUESTS = Counter(
    "checkout_http_requests_total",
    "HTTP requests answered by the checkout API.",
    ["endpoint", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "checkout_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["endpoint", "method"],
    buckets=_LATENCY_BUCKETS,
)
CHECKOUTS = Counter(
    "checkouts_total",
    "Checkout attempts by outcome (completed, replayed, declined, payment_timeout, "
    "stock_failed, publish_failed, conflict).",
    ["outcome"],
)
PAYMENTS = Counter(
    "checkout_payments_total",
    "Payment gateway answers by method and outcome (approved, declined, timeout, conflict).",
    ["method", "outcome"],
)
KAFKA_PUBLISH_LATENCY = Histogram(
    "checkout_kafka_publish_duration_seconds",
    "Time from handing a sale to the producer until the broker acknowledged it (acks=all).",
    buckets=_LATENCY_BUCKETS,
)
CHECKOUT_STAGE_LATENCY = Histogram(
    "checkout_stage_duration_seconds",
    "Wall time of each sequential stage of a checkout: cart (read and replay check), charge "
    "(the payment gateway), commit (stock and the Kafka publish, concurrently), close "
    "(the checkout record). Their sum is most of POST /carts/{id}/checkout.",
    ["stage"],
    buckets=_LATENCY_BUCKETS,
)
NEGATIVE_STOCK = Counter(
    "checkout_negative_stock_total",
    "Stock reads (GET /stock, restocks) that found a product's level below zero at a branch.",
    ["branch"],
)
CONSUMER_LAG = Gauge(
    "checkout_consumer_lag",
    "Messages in a partition not yet written to Cassandra (high watermark - position).",
    ["topic", "partition"],
)
CONSUMER_ROWS_WRITTEN = Counter(
    "checkout_consumer_rows_written_total",
    "Sale events written to Cassandra by the consumer (one per invoice, all tables).",
)
CONSUMER_WRITE_LATENCY = Histogram(
    "checkout_consumer_write_duration_seconds",
    "Time to write one polled batch of sale events to Cassandra, retries included.",
    buckets=_LATENCY_BUCKETS,
)
DEAD_LETTERS = Counter(
    "checkout_dead_letters_total",
    "Messages sent to the dead-letter topic, by reason.",
    ["reason"],
)
CASSANDRA_DOWNGRADES = Counter(
    "checkout_cassandra_consistency_downgrades_total",
    "Statements re-run at CHECKOUT_CASSANDRA_FALLBACK_CONSISTENCY because the main level "
    "could not be met (a replica down or timing out), by statement kind, table and levels.",
    ["kind", "table", "from_level", "to_level"],
)
CASSANDRA_DC_FAILOVERS = Counter(
    "checkout_cassandra_dc_failovers_total",
    "Statements run in another DC because no node of the DC they were meant for was up "
    "(a region keyspace's standby DC, or the next DC for the shared one).",
    ["kind", "table", "from_dc", "to_dc"],
)
SERVICE_INFO = Info("checkout_service", "Which service and region this process is.")
