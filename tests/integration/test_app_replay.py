"""Replaying the dataset stores exactly its 1000 sales (one `sales` row each, one line
inside), with the CSV's sums, in every DC, moves no stock (it is 2019 history), and the
consumers catch up (lag back to 0). Safe to re-run: invoice ids are the dataset's and
every write is an idempotent upsert, so a replay overwrites itself."""

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
from checkout.cql import SALES_TTL_SECONDS
from checkout.events import stored_lines

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


def _stored_dataset_days(session: Any, dataset: DatasetFigures) -> list[Any]:
    """Every `sales` row of the dataset's (branch, store day) partitions: 2019 days that
    hold nothing but the replayed sales."""
    statement = session.prepare(
        "SELECT invoice_id, lines, total, tax, cogs, gross_income, TTL(total) AS ttl, WRITETIME(total) AS written "
        "FROM sales WHERE branch = ? AND day = ?"
    )
    # LOCAL_QUORUM: both replicas of the DC, newest write wins (a replica that dropped a
    # mutation under load and awaits its hint is repaired by the read).
    statement.consistency_level = ConsistencyLevel.LOCAL_QUORUM
    partitions = [(branch, date.fromisoformat(day)) for branch, day in sorted(dataset.partitions)]
    results = execute_concurrent_with_args(session, statement, partitions, concurrency=50)
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
            rows = _stored_dataset_days(session, dataset)
            fresh = [row for row in rows if row.written >= replayed.started_us]
            if len(fresh) >= 1000 or time.perf_counter() > deadline:
                break
            time.sleep(2)
        counts[dc] = round(time.perf_counter() - replayed.finished, 1)
        # One row per invoice on the dataset's days: a duplicate would be a second row.
        assert len(rows) == 1000, f"DC {dc} holds {len(rows)} sales rows on the 1000 dataset sales' days"
        assert len(fresh) == 1000, f"DC {dc}: only {len(fresh)} sales were rewritten by the replay"
        assert {row.invoice_id for row in rows} == dataset.invoices
        lines = [stored_lines(row._asdict()) for row in rows]
        assert {len(sale_lines) for sale_lines in lines} == {1}, f"DC {dc}: a replayed sale is one line"
        sums = (
            sum(line.quantity for sale_lines in lines for line in sale_lines),
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
        assert SALES_TTL_SECONDS - 1000 <= min(ttls) <= max(ttls) <= SALES_TTL_SECONDS
    FIGURES["all 1000 readable per DC, s after the replay ended (incl. query time)"] = counts
    FIGURES["CSV sums: rows, quantity, total, tax, cogs, gross income"] = (
        f"{dataset.rows}, {dataset.quantity}, {dataset.total}, {dataset.tax}, {dataset.cogs}, {dataset.gross_income}"
    )


def test_replayed_history_moves_no_stock(
    lab: Inventory, dc_sessions: dict[str, Any], dataset: DatasetFigures, replayed: Replay
) -> None:
    """Replayed rows are 2019 history for the reports: no movement on their days in any
    branch's stock (stock_moves of its home region's keyspace), whatever the consumers did."""
    found: dict[str, int] = {}
    for branch in sorted({branch for branch, _ in dataset.partitions}):
        session = dc_sessions[lab.home_region(branch)]
        statement = session.prepare(
            f"SELECT movement_id FROM {lab.home_keyspace(branch)}.stock_moves WHERE branch = ? AND day = ? LIMIT 1"
        )
        statement.consistency_level = ConsistencyLevel.LOCAL_QUORUM
        days = [(branch, date.fromisoformat(day)) for b, day in sorted(dataset.partitions) if b == branch]
        results = execute_concurrent_with_args(session, statement, days, concurrency=50)
        found[branch] = 0
        for outcome in results:
            assert outcome.success, outcome.result_or_exc
            found[branch] += len(list(outcome.result_or_exc))
    assert found == dict.fromkeys(found, 0), f"stock moved on dataset days (partitions with movements): {found}"
