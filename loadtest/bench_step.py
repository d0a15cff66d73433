"""One benchmark step's figures: what bench.py measures and bench_report.py draws.

Its own module so the two import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from loadtest.lab_usage import Usage
from loadtest.slo import Check


@dataclass(frozen=True)
class Step:
    offered: float
    achieved: float
    requests: int
    failures: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    acked: int
    rows_written: float  # rows the consumers wrote for the step's sales
    usage: Usage
    db_requests: dict[str, float]  # Cassandra coordinator requests per checkout, by kind
    checks: list[Check]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)
