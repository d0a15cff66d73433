"""Replaying the dataset stores exactly its 1000 sales, with the CSV's sums, in every DC,
and the consumers catch up (lag back to 0). Safe to re-run: invoice ids are the
dataset's and every write is an idempotent upsert, so a replay overwrites itself."""

from __future__ import annotations

import time
import urllib.request
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from cassandra import ConsistencyLevel
from cassandra.concurrent import execute_concurrent_with_args

from .conftest import FIGURES
from .lab import (
    CONSUMER_METRICS_PORT,
    DatasetFigures,
    Inventory,
    dataset_figures,
    metric_samples,
    ssh,
)

STORED_WITHIN_S = 240.0


@dataclass(frozen=True)
class Replay:
    started_us: int  # wall clock, microseconds (Cassandra write times)
    finished: float  # perf_counter


def consumer_lag(lab: Inventory) -> dict[str, float]:
    """Total checkout_consumer_lag of each app node's consumer."""
    lags = {}
    for host in lab.app_hosts():
        url = f"http://{lab.address(host)}:{CONSUMER_METRICS_PORT}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        lags[host] = sum(value for _, value in metric_samples(text, "checkout_consumer_lag"))
    return lags


@pytest.fixture(scope="module")
def dataset() -> DatasetFigures:
    figures = dataset_figures()
    assert figures.rows == 1000
    assert len(figures.invoices) == 1000
    return figures


@pytest.fixture(scope="module")
def replayed(lab: Inventory, dataset: DatasetFigures) -> Replay:
    """Run checkout-replay on the Yangon app node (the role's wrapper loads its settings)."""
    address = lab.address(lab.app_host_of("Yangon"))
    # The lab VMs share this machine's clock: every row this replay writes is newer.
    started_us = int(time.time() * 1_000_000)
    started = time.perf_counter()
    result = ssh(address, "checkout-replay --batch-size 10", timeout_s=600)
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, f"checkout-replay failed:\n{result.stdout}\n{result.stderr}"
    assert "sent 1000 events" in result.stdout, result.stdout
    FIGURES["replay (checkout-replay on app-a, batches of 10)"] = (
        f"{result.stdout.strip().splitlines()[-1]} [ssh wall {elapsed:.1f}s]"
    )
    return Replay(started_us, time.perf_counter())


def test_consumer_lag_returns_to_zero(lab: Inventory, replayed: Replay) -> None:
    deadline = replayed.finished + STORED_WITHIN_S
    while True:
        lags = consumer_lag(lab)
        if all(lag == 0 for lag in lags.values()) or time.perf_counter() > deadline:
            break
        time.sleep(1)
    assert all(lag == 0 for lag in lags.values()), f"consumer lag still {lags}"
    FIGURES["consumer lag back to 0 after the replay ended (s)"] = round(time.perf_counter() - replayed.finished, 1)


def _stored_invoices(session: Any, invoices: frozenset[str]) -> list[Any]:
    statement = session.prepare(
        "SELECT invoice_id, line_no, quantity, total, tax, cogs, gross_income, "
        "TTL(total) AS ttl, WRITETIME(total) AS written FROM sales_by_invoice WHERE invoice_id = ?"
    )
    # LOCAL_QUORUM: both replicas of the DC, newest write wins (a replica that dropped a
    # mutation under load and awaits its hint is repaired by the read).
    statement.consistency_level = ConsistencyLevel.LOCAL_QUORUM
    results = execute_concurrent_with_args(session, statement, [(i,) for i in sorted(invoices)], concurrency=50)
    rows = []
    for outcome in results:
        assert outcome.success, outcome.result_or_exc
        rows.extend(outcome.result_or_exc)
    return rows


def test_replay_stores_exactly_the_dataset_in_every_dc(
    lab: Inventory, dc_sessions: dict[str, Any], dataset: DatasetFigures, replayed: Replay
) -> None:
    counts = {}
    for dc, session in dc_sessions.items():
        # Wait until this replay rewrote every sale (earlier runs' rows are already there).
        deadline = replayed.finished + STORED_WITHIN_S
        while True:
            rows = _stored_invoices(session, dataset.invoices)
            fresh = [row for row in rows if row.written >= replayed.started_us]
            if len(fresh) >= 1000 or time.perf_counter() > deadline:
                break
            time.sleep(2)
        counts[dc] = round(time.perf_counter() - replayed.finished, 1)
        assert len(rows) == 1000, f"DC {dc} holds {len(rows)} of the 1000 dataset sales"
        assert len(fresh) == 1000, f"DC {dc}: only {len(fresh)} sales were rewritten by the replay"
        assert {row.invoice_id for row in rows} == dataset.invoices
        assert {row.line_no for row in rows} == {1}
        sums = (
            sum(row.quantity for row in rows),
            sum((row.total for row in rows), Decimal(0)),
            sum((row.tax for row in rows), Decimal(0)),
            sum((row.cogs for row in rows), Decimal(0)),
            sum((row.gross_income for row in rows), Decimal(0)),
        )
        expected = (dataset.quantity, dataset.total, dataset.tax, dataset.cogs,
                    dataset.gross_income)  # fmt: skip
        assert sums == expected, f"DC {dc}: stored sums {sums} != CSV sums {expected}"
        ttls = [row.ttl for row in rows]
        FIGURES[f"replayed rows in DC {dc}: count, total, TTL min..max (s)"] = (
            f"{len(rows)}, {sums[1]}, {min(ttls)}..{max(ttls)}"
        )
        # The rows were just (re)written by this replay: a full 90-day TTL.
        assert 7_775_000 <= min(ttls) <= max(ttls) <= 7_776_000
    FIGURES["all 1000 readable per DC, s after the replay ended (incl. query time)"] = counts
    FIGURES["CSV sums: rows, quantity, total, tax, cogs, gross income"] = (
        f"{dataset.rows}, {dataset.quantity}, {dataset.total}, {dataset.tax}, {dataset.cogs}, {dataset.gross_income}"
    )

    # The main table, partition by partition (branch, day), at LOCAL_QUORUM in one DC:
    # the dataset's days hold exactly its sales, so duplicates would show up here.
    session = dc_sessions["Mandalay"]
    statement = session.prepare("SELECT invoice_id, total FROM sales_by_branch_day WHERE branch = ? AND day = ?")
    statement.consistency_level = ConsistencyLevel.LOCAL_QUORUM
    rows = []
    for branch, day in sorted(dataset.partitions):
        rows.extend(session.execute(statement, (branch, date.fromisoformat(day))))
    assert len(rows) == 1000, f"sales_by_branch_day holds {len(rows)} rows on the dataset days"
    assert {row.invoice_id for row in rows} == dataset.invoices
    assert sum((row.total for row in rows), Decimal(0)) == dataset.total
