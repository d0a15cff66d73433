"""One benchmark step's figures: what bench.py measures and bench_report.py draws.

Its own module so the two import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from loadtest.db_profile import OpCost
from loadtest.lab_usage import Usage
from loadtest.slo import Check


@dataclass(frozen=True)
class Step:
    offered: float
    achieved: float  # completed checkout operations/s (sold or declined), not checkout requests/s
    requests: int
    failures: int
    p50_ms: float
    p95_ms: float
    p99_ms: float  # latencies: the checkout request's
    acked: int
    usage: Usage
    cost: OpCost  # per operation the APIs finished: Cassandra requests, replica writes, CPU ms
    checks: list[Check]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)
