"""The load test's own logic: baskets from the dataset, inventory targets, SLO verdicts."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from loadtest import shopper
from loadtest.run import CHECKOUT_NAME, EndpointStats, RunResult, read_stats
from loadtest.slo import Slo, gate_passed, judge, render
from loadtest.targets import InventoryError, from_listing
from loadtest.verify import StoredSales

SALES = shopper.load_sales()


def test_dataset_gives_1000_sales_over_three_branches() -> None:
    assert len(SALES) == 1000
    assert shopper.branch_weights(SALES) == {"A": 340, "B": 332, "C": 328}


def test_baskets_follow_the_dataset_mix() -> None:
    rng = random.Random(7)
    sales_a = shopper.by_branch(SALES)["A"]
    baskets = [shopper.draw_basket(rng, sales_a) for _ in range(4000)]
    assert {b.branch for b in baskets} == {"A"}
    sizes = Counter(len(b.items) for b in baskets)
    assert set(sizes) == {1, 2, 3, 4, 5}
    assert 0.35 < sizes[1] / len(baskets) < 0.45
    payments = Counter(b.payment for b in baskets)
    expected = Counter(s.payment for s in sales_a)
    for method, count in expected.items():
        assert abs(payments[method] / len(baskets) - count / len(sales_a)) < 0.03
    removed = [b for b in baskets if b.removed]
    assert 0.05 < len(removed) / len(baskets) < 0.12
    assert all(b.removed not in dict(b.items) for b in removed)
    assert all(1 <= qty <= 10 for b in baskets for _, qty in b.items)


def test_product_ids_match_prices_however_the_api_writes_them() -> None:
    ids = shopper.product_ids([{"product_line": "Health and beauty", "unit_price": "74.690", "product_id": "hab-1"}])
    assert ids[("Health and beauty", Decimal("74.69"))] == "hab-1"


LISTING = {
    "_meta": {
        "hostvars": {
            "localhost": {"ansible_connection": "local"},
            "app-a": {"ansible_host": "10.0.0.14", "branch": "A", "region": "Yangon"},
            "app-b": {"ansible_host": "10.0.0.24", "branch": "B", "checkout_app_api_port": 9000},
            "cass-a1": {"ansible_host": "10.0.0.11", "region": "Yangon"},
            "cass-b1": {"ansible_host": "10.0.0.21", "region": "Mandalay", "cassandra_dc": "MDY"},
            "kafka-a": {"ansible_host": "10.0.0.13"},
            "monitor": {"ansible_host": "10.0.0.5"},
        }
    },
    "app": {"hosts": ["app-a", "app-b"]},
    "cassandra": {"hosts": ["cass-a1", "cass-b1"]},
    "kafka": {"hosts": ["kafka-a"]},
    "monitoring": {"hosts": ["monitor"]},
}


def test_targets_come_from_the_inventory() -> None:
    targets = from_listing(LISTING)
    assert targets.branch_hosts_arg() == "A=http://10.0.0.14:8080,B=http://10.0.0.24:9000"
    assert targets.cassandra_by_dc == {"Yangon": ["10.0.0.11"], "MDY": ["10.0.0.21"]}
    assert targets.kafka_bootstrap == ["10.0.0.13:9092"]
    assert targets.prometheus == "http://10.0.0.5:9090"
    assert "localhost" not in targets.lab_vms


def test_an_app_host_without_branch_is_refused() -> None:
    listing = {**LISTING, "_meta": {"hostvars": {"app-a": {"ansible_host": "10.0.0.14"}}}, "app": {"hosts": ["app-a"]}}
    with pytest.raises(InventoryError, match="app-a has no branch"):
        from_listing(listing)


def test_locust_stats_csv_is_read(tmp_path: Path) -> None:
    csv_file = tmp_path / "locust_stats.csv"
    csv_file.write_text(
        "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,"
        "Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,"
        "99.99%,100%\n"
        f"POST,{CHECKOUT_NAME},15000,0,41,45.2,12,812,900,50.02,0,41,48,52,55,63,72,90,120,400,800,812\n"
        ",Aggregated,70000,2,20,25.0,3,812,700,233.4,0.01,20,25,30,33,41,52,70,95,300,700,812\n"
    )
    stats = read_stats(csv_file)
    assert stats[CHECKOUT_NAME] == EndpointStats(CHECKOUT_NAME, 15000, 0, 50.02, 41, 72, 120, 812)
    assert stats["Aggregated"].failures == 2


def _result(rate: float, failures: int, p95: float, p99: float) -> RunResult:
    now = datetime.now(UTC)
    checkout = EndpointStats(CHECKOUT_NAME, 15000, 0, rate, 40, p95, p99, 900)
    total = EndpointStats("Aggregated", 70000, failures, rate * 4.6, 20, 50, 90, 900)
    return RunResult(Path("/tmp/run"), now, now, 0, {CHECKOUT_NAME: checkout, "Aggregated": total}, ["i1"])


GOOD_STORE = StoredSales(acked=1, found=1, missing=[], in_window=1, duplicated=[], unexpected=[])


def test_slo_passes_when_every_objective_is_met() -> None:
    checks = judge(Slo(), _result(49.0, 0, 80, 200), 1.5, GOOD_STORE)
    assert all(c.passed for c in checks), checks
    assert "SLO PASS: 7 of 7" in render(_result(49.0, 0, 80, 200), checks)


@pytest.mark.parametrize(
    ("result", "lag", "store", "failed"),
    [
        (_result(47.0, 0, 80, 200), 1.0, GOOD_STORE, "checkout rate"),
        (_result(53.0, 0, 80, 200), 1.0, GOOD_STORE, "checkout rate"),
        (_result(50.0, 1, 80, 200), 1.0, GOOD_STORE, "failed requests"),
        (_result(50.0, 0, 101, 200), 1.0, GOOD_STORE, "checkout p95"),
        (_result(50.0, 0, 80, 251), 1.0, GOOD_STORE, "checkout p99"),
        (_result(50.0, 0, 80, 200), 10.5, GOOD_STORE, "consumer lag back to 0"),
        (_result(50.0, 0, 80, 200), None, GOOD_STORE, "consumer lag back to 0,consumer caught up"),
        (_result(50.0, 0, 80, 200), 1.0, StoredSales(1, 0, ["i1"], 0, [], []), "acknowledged = stored"),
        (_result(50.0, 0, 80, 200), 1.0, StoredSales(1, 1, [], 1, ["i1"], []), "acknowledged = stored"),
        (_result(50.0, 0, 80, 200), 1.0, StoredSales(1, 1, [], 2, [], ["x"]), "acknowledged = stored"),
    ],
)
def test_each_objective_can_fail(result: RunResult, lag: float | None, store: StoredSales, failed: str) -> None:
    checks = judge(Slo(), result, lag, store)
    assert [c.objective for c in checks if not c.passed] == failed.split(",")
    assert "SLO FAIL" in render(result, checks)
    assert not gate_passed(checks, "all")


def test_the_functional_gate_ignores_speed_but_not_correctness() -> None:
    slow = judge(Slo(), _result(20.0, 0, 900, 3000), 30.0, GOOD_STORE)
    assert not gate_passed(slow, "all")
    assert gate_passed(slow, "functional")
    assert "functional objectives only (PASS)" in render(_result(20.0, 0, 900, 3000), slow, "functional")
    lost = judge(Slo(), _result(20.0, 0, 900, 3000), 30.0, StoredSales(1, 0, ["i1"], 0, [], []))
    assert not gate_passed(lost, "functional")
    failing = judge(Slo(), _result(20.0, 3, 900, 3000), 30.0, GOOD_STORE)
    assert not gate_passed(failing, "functional")


def test_a_run_without_checkouts_fails() -> None:
    now = datetime.now(UTC)
    empty = RunResult(Path("/tmp/run"), now, now, 1, {}, [])
    assert [c.passed for c in judge(Slo(), empty, 0.0, GOOD_STORE)] == [False]
