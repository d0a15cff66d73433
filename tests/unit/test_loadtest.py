"""The load test's own logic: baskets from the dataset, inventory targets, SLO verdicts."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from checkout.domain import STORE_TZ

from loadtest import shopper
from loadtest.run import (
    CHECKOUT_NAME,
    OPERATION_NAME,
    EndpointStats,
    Load,
    RunResult,
    progress_line,
    read_stats,
    wait_for_workers,
)
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


def test_a_running_locust_reports_its_progress(tmp_path: Path) -> None:
    csv_file = tmp_path / "locust_stats.csv"
    load = Load(rate=50, hold_s=300, ramp_s=30)
    started = datetime.now(UTC) - timedelta(seconds=60)
    assert progress_line(csv_file, started, load).endswith("of 330: no statistics yet")
    csv_file.write_text(
        "Type,Name,Request Count,Failure Count,Requests/s,50%,95%,99%,Max Response Time\n"
        f",{OPERATION_NAME},812,0,13.5,3300,6000,7800,13000\n"
        ",Aggregated,4400,3,73.3,600,4200,6000,13000\n"
    )
    line = progress_line(csv_file, started, load)
    assert line.startswith("    60 s of 330: 812 checkout ops (13.5/s on average)"), line
    assert line.endswith("operation p95 6000 ms, 3 failed requests"), line


def _result(rate: float, failures: int, p95: float, p99: float, retried: float = 0.0) -> RunResult:
    """`rate` operations/s; each retried checkout request adds to the checkout row only."""
    now = datetime.now(UTC)
    checkout = EndpointStats(CHECKOUT_NAME, 15000, 0, rate + retried, 40, p95, p99, 900)
    ops = EndpointStats(OPERATION_NAME, 15000, 0, rate, 200, 400, 600, 1500)
    total = EndpointStats("Aggregated", 85000, failures, rate * 5.6 + retried, 20, 50, 90, 1500)
    endpoints = {CHECKOUT_NAME: checkout, OPERATION_NAME: ops, "Aggregated": total}
    return RunResult(Path("/tmp/run"), now, now, 0, endpoints, ["i1"])


def test_the_run_waits_for_workers_that_outlive_the_master(tmp_path: Path) -> None:
    marker = str(tmp_path / "acked")
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)", marker])
    started = time.monotonic()
    wait_for_workers(marker, deadline_s=30)
    assert worker.wait(timeout=1) == 0
    assert time.monotonic() - started >= 1.0


def test_the_wait_for_workers_is_bounded(tmp_path: Path) -> None:
    marker = str(tmp_path / "acked")
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", marker])
    try:
        started = time.monotonic()
        wait_for_workers(marker, deadline_s=0.5)
        assert time.monotonic() - started < 5
        assert worker.poll() is None
    finally:
        worker.kill()
        worker.wait()


def test_the_totals_leave_out_the_operation_entries() -> None:
    total = _result(50.0, 2, 80, 200).total
    assert total is not None
    assert (total.requests, total.failures) == (70000, 2)
    assert total.rate == pytest.approx(50.0 * 4.6)


GOOD_STORE = StoredSales(acked=1, found=1, lines=2, missing=[], in_window=1, duplicated=[], unexpected=[])


def test_slo_passes_when_every_objective_is_met() -> None:
    checks = judge(Slo(), _result(49.0, 0, 80, 200), 1.5, GOOD_STORE)
    assert all(c.passed for c in checks), checks
    assert "SLO PASS: 8 of 8" in render(_result(49.0, 0, 80, 200), checks)


@pytest.mark.parametrize(
    ("result", "lag", "store", "failed"),
    [
        (_result(47.0, 0, 80, 200), 1.0, GOOD_STORE, "checkout ops rate"),
        (_result(53.0, 0, 80, 200), 1.0, GOOD_STORE, "checkout ops rate"),
        # Retried checkout requests do not make up for missing operations.
        (_result(45.0, 0, 80, 200, retried=6.0), 1.0, GOOD_STORE, "checkout ops rate"),
        (_result(50.0, 1, 80, 200), 1.0, GOOD_STORE, "failed requests"),
        (_result(50.0, 0, 101, 200), 1.0, GOOD_STORE, "checkout p95"),
        (_result(50.0, 0, 80, 251), 1.0, GOOD_STORE, "checkout p99"),
        (_result(50.0, 0, 80, 200), 10.5, GOOD_STORE, "consumer lag back to 0"),
        (_result(50.0, 0, 80, 200), None, GOOD_STORE, "consumer lag back to 0,consumer caught up"),
        (_result(50.0, 0, 80, 200), 1.0, StoredSales(1, 0, 0, ["i1"], 0, [], []), "acknowledged = stored"),
        (_result(50.0, 0, 80, 200), 1.0, StoredSales(1, 1, 2, [], 1, ["i1"], []), "acknowledged = stored"),
        (_result(50.0, 0, 80, 200), 1.0, StoredSales(1, 1, 2, [], 2, [], ["x"]), "acknowledged = stored"),
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
    lost = judge(Slo(), _result(20.0, 0, 900, 3000), 30.0, StoredSales(1, 0, 0, ["i1"], 0, [], []))
    assert not gate_passed(lost, "functional")
    few_timeouts = judge(Slo(), _result(20.0, 3, 900, 3000), 30.0, GOOD_STORE)
    assert gate_passed(few_timeouts, "functional")
    failing = judge(Slo(), _result(20.0, 700, 900, 3000), 30.0, GOOD_STORE)
    assert [c.objective for c in failing if not c.passed and c.functional] == ["requests mostly answered"]
    assert not gate_passed(failing, "functional")


def test_a_run_without_checkouts_fails() -> None:
    now = datetime.now(UTC)
    empty = RunResult(Path("/tmp/run"), now, now, 1, {}, [])
    assert [c.passed for c in judge(Slo(), empty, 0.0, GOOD_STORE)] == [False]


PERF_OUTPUT = """\
150003 records sent, 30000.6 records/sec (29.30 MB/sec), 612.4 ms avg latency, 1402.0 ms max latency.
300000 records sent, 31234.5 records/sec (30.50 MB/sec), 590.12 ms avg latency, 1502.00 ms max latency, \
540 ms 50th, 1200 ms 95th, 1400 ms 99th, 1490 ms 99.9th.
"""


def test_the_kafka_perf_test_summary_is_parsed() -> None:
    from loadtest.raw_kafka import parse_summary

    result = parse_summary(PERF_OUTPUT)
    assert (result.records, result.records_per_s, result.mb_per_s, result.p95_ms, result.p99_ms) == (
        300000, 31234.5, 30.5, 1200, 1400,
    )  # fmt: skip
    with pytest.raises(RuntimeError, match="no summary line"):
        parse_summary("ERROR something went wrong")


COST = {
    "requests": {"CASWrite": 1.0, "Read": 9.5, "Write": 19.2},
    "replica_writes": {"checkout": 6.0, "checkout_mandalay": 20.0, "checkout_yangon": 24.0},
    "cpu_ms": {"checkout_api": 30.0, "checkout_consumer": 4.0, "payment_gateway": 2.5},
}


def _step(offered: float, achieved: float, p95: float, passed: bool, measured: bool = True) -> object:
    from loadtest.bench_step import Step
    from loadtest.db_profile import NO_COST, OpCost
    from loadtest.lab_usage import Usage, VmUsage
    from loadtest.slo import Check

    usage = Usage(60, 1.9, 2, 9000, 0.2, {"cass-a1": VmUsage(0.9, 900), "app-a": VmUsage(0.4, 300)})
    checks = [Check("checkout p95", "<= 100 ms", f"{p95} ms", passed)]
    cost = OpCost(achieved * 60, **COST) if measured else NO_COST  # type: ignore[arg-type]
    return Step(offered, achieved, 1000, 0, 50, p95, p95 * 2, int(achieved * 60), usage, cost, checks)


RAW = {"rows_per_s": 1080.0, "rows": 32400, "errors": 0, "seconds": 31.0, "processes": 2, "concurrency": 128}


def test_the_benchmark_reports_both_ceilings_and_ratios(tmp_path: Path) -> None:
    from loadtest.bench_report import chart, markdown
    from loadtest.bench_summary import summarize
    from loadtest.raw_cassandra import RawCassandra
    from loadtest.raw_kafka import parse_summary

    steps = [_step(5, 5.0, 80, True), _step(10, 9.8, 150, False), _step(20, 12.0, 900, False)]
    cassandra = RawCassandra(**RAW, consistency="LOCAL_QUORUM")  # type: ignore[arg-type]
    kafka = parse_summary(PERF_OUTPUT)
    summary = summarize(steps, cassandra, kafka, 6)  # type: ignore[arg-type]
    assert summary["rate_unit"] == "checkout ops/s"
    assert summary["ceiling_within_slo"] == 5
    assert summary["ceiling_achieved"] == 12.0
    assert summary["requests_per_op_total"] == pytest.approx(29.7)
    assert summary["replica_writes_per_op"] == pytest.approx(50.0)
    assert summary["replica_writes_per_op_by_kind"] == {"shared": 6.0, "region": 44.0}
    assert summary["cpu_ms_per_op"] == COST["cpu_ms"]
    # 50 replica writes per op x 12 ops/s against 1080 rows/s x 6 replicas.
    assert summary["pipeline_replica_writes_per_s"] == pytest.approx(600.0)
    assert summary["raw_replica_writes_per_s"] == pytest.approx(6480.0)
    assert summary["replica_write_share_of_raw"] == pytest.approx(600.0 / 6480.0)
    assert summary["raw_ceiling_ops_per_s"] == pytest.approx(6480.0 / 50.0)
    verdict = str(summary["verdict"])
    assert "Highest rate within the SLO: 5 ops/s" in verdict
    assert "Most checkout operations completed: 12.0/s" in verdict
    assert "cass VMs (0.90)" in verdict
    assert "CASWrite 1.0, Read 9.5, Write 19.2 (total 29.7) coordinator requests" in verdict
    assert "50.0 (shared 6.0, region 44.0) replica writes" in verdict
    assert "CPU API 30.0, consumer 4.0, gateway 2.5 ms" in verdict
    assert "600 replica writes/s, 9.3% of raw Cassandra's 6480 replica writes/s" in verdict
    assert "(1080 sale rows/s at LOCAL_QUORUM x 6 replicas)" in verdict
    png = tmp_path / "bench.png"
    chart(png, steps, cassandra, kafka, summary)  # type: ignore[arg-type]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = markdown(datetime.now(UTC), {"cpus": "2"}, steps, summary, cassandra, kafka, png.name)  # type: ignore[arg-type]
    assert report.count("\n| ") == 4 and "FAIL: checkout p95" in report and "![" in report
    assert "| CASWrite 1.0, Read 9.5, Write 19.2 (total 29.7) | 50.0 (shared 6.0, region 44.0) |" in report
    assert "| API 30.0, consumer 4.0, gateway 2.5 ms |" in report
    assert "x 6 replicas per row (the shared keyspace's factors, summed) = 6,480 replica writes/s" in report
    assert "none of the steps" in str(summarize(steps[1:], cassandra, kafka, 6)["verdict"])  # type: ignore[arg-type]


def test_the_benchmark_says_when_the_cost_was_not_measured(tmp_path: Path) -> None:
    from loadtest.bench_report import chart, markdown
    from loadtest.bench_summary import summarize
    from loadtest.raw_cassandra import RawCassandra
    from loadtest.raw_kafka import parse_summary

    steps = [_step(5, 4.0, 300, False, measured=False)]
    cassandra = RawCassandra(**RAW, consistency="LOCAL_QUORUM")  # type: ignore[arg-type]
    kafka = parse_summary(PERF_OUTPUT)
    summary = summarize(steps, cassandra, kafka, 6)  # type: ignore[arg-type]
    assert summary["replica_writes_per_op"] is None and summary["requests_per_op_total"] is None
    assert summary["pipeline_replica_writes_per_s"] is None and summary["replica_write_share_of_raw"] is None
    assert summary["raw_ceiling_ops_per_s"] is None
    assert "replica writes not measured; raw Cassandra 6480 replica writes/s" in str(summary["verdict"])
    chart(tmp_path / "bench.png", steps, cassandra, kafka, summary)  # type: ignore[arg-type]
    report = markdown(datetime.now(UTC), {}, steps, summary, cassandra, kafka, "bench.png")  # type: ignore[arg-type]
    assert "| no figures | no figures | no figures | FAIL: checkout p95 |" in report


def test_pipeline_replica_writes_are_compared_with_the_raw_ones() -> None:
    from loadtest.bench_summary import pipeline_vs_raw

    assert pipeline_vs_raw(40.0, 10.0, 500.0, 6) == {
        "pipeline_replica_writes_per_s": 400.0,
        "raw_replica_writes_per_s": 3000.0,
        "replica_write_share_of_raw": pytest.approx(400.0 / 3000.0),
        "raw_ceiling_ops_per_s": 75.0,
    }
    assert pipeline_vs_raw(40.0, 10.0, 0.0, 6)["replica_write_share_of_raw"] is None
    assert pipeline_vs_raw(None, 10.0, 500.0, 6)["raw_ceiling_ops_per_s"] is None


def _results(summary: dict[str, object], steps: list[object] | None = None) -> dict[str, object]:
    return {
        "started": "2026-11-29T10:00:00+00:00",
        "steps": steps or [],
        "raw_cassandra": {"rows_per_s": 1080.0},
        "raw_kafka": {"records_per_s": 31234.5},
        "summary": summary,
    }


def test_before_after_reads_an_earlier_results_file_with_fewer_figures() -> None:
    from loadtest.bench_compare import before_after, figures, load
    from loadtest.bench_summary import summarize
    from loadtest.raw_cassandra import RawCassandra
    from loadtest.raw_kafka import parse_summary

    old = load(Path(__file__).resolve().parents[2] / "loadtest" / "results" / "2026-11-22-vm.json")
    old_figures = figures(old)
    assert old_figures["highest rate within the SLO, ops/s"] == "none"
    assert old_figures["most completed, /s"] == "7.0"
    assert old_figures["offered there, /s"] == "10"
    assert old_figures["checkout p95 there, ms"] == "1,900"
    assert old_figures["host CPU there, cores"] == "1.87"
    # The coordinator requests come from the busiest step, which has them.
    assert old_figures["Cassandra requests per op"] == "CASWrite 1.5, Read 12.8, Write 16.5"
    assert old_figures["Cassandra requests per op, total"] == "30.8"
    assert old_figures["raw Cassandra sale rows/s"] == "639"
    assert old_figures["raw Kafka records/s"] == "11,874"
    for missing in ("replica writes per op", "API CPU per op, ms", "pipeline share of raw replica writes/s"):
        assert old_figures[missing] == "n/a"

    steps = [_step(5, 5.0, 80, True), _step(10, 9.0, 150, False)]
    cassandra = RawCassandra(**RAW, consistency="LOCAL_QUORUM")  # type: ignore[arg-type]
    summary = summarize(steps, cassandra, parse_summary(PERF_OUTPUT), 6)  # type: ignore[arg-type]
    new = _results(summary)
    lines = before_after(old, new, "2026-11-22-vm.json")
    assert lines[0] == "## Before / after (2026-11-22-vm.json)"
    assert lines[2] == "| figure | before (2026-11-22T09:29) | after (2026-11-29T10:00) |"
    assert "| highest rate within the SLO, ops/s | none | 5 |" in lines
    assert "| replica writes per op | n/a | 50.0 |" in lines
    assert "| replica writes per op, region keyspaces | n/a | 44.0 |" in lines
    assert "| consumer CPU per op, ms | n/a | 4.0 |" in lines
    assert "| pipeline share of raw replica writes/s | n/a | 6.9% |" in lines
    assert "| raw Cassandra sale rows/s | 639 | 1,080 |" in lines
    assert any("counted checkout requests/s" in line for line in lines)
    assert not any("counted checkout requests/s" in line for line in before_after(new, new, "x.json"))


def test_before_after_refuses_a_file_that_is_no_results(tmp_path: Path) -> None:
    from loadtest.bench_compare import load

    path = tmp_path / "other.json"
    path.write_text(json.dumps({"steps": []}))
    with pytest.raises(ValueError, match="not a benchmark results file"):
        load(path)


def _vector(*series: tuple[dict[str, str], float]) -> dict[str, object]:
    result = [{"metric": metric, "value": [1763800000.0, str(value)]} for metric, value in series]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def test_the_database_profile_divides_requests_by_checkouts() -> None:
    from loadtest import db_profile

    before = db_profile.parse(
        _vector(({"scope": "Write"}, 1000), ({"scope": "Read"}, 500), ({"scope": "CASWrite"}, 10)), _vector(({}, 100))
    )
    after = db_profile.parse(
        _vector(({"scope": "Write"}, 3000), ({"scope": "Read"}, 1500), ({"scope": "CASWrite"}, 110),
                ({"scope": "RangeSlice"}, 0)),
        _vector(({}, 200)),
    )  # fmt: skip
    profile = db_profile.per_checkout(before, after)
    assert profile == {"CASWrite": 1.0, "Read": 10.0, "Write": 20.0}
    assert db_profile.describe(profile) == "CASWrite 1.0, Read 10.0, Write 20.0"
    assert db_profile.per_checkout(after, after) == {}
    assert db_profile.describe({}) == "no figures"
    # Without the replica-write and CPU series (an older deploy) those figures stay empty.
    cost = db_profile.cost(before, after)
    assert (cost.ops, cost.requests_total, cost.replica_writes_total, cost.cpu_ms) == (100, 31.0, None, {})
    assert db_profile.describe_requests(cost) == "CASWrite 1.0, Read 10.0, Write 20.0 (total 31.0)"
    assert db_profile.describe_replica_writes(cost) == db_profile.describe_cpu(cost) == "no figures"


def test_the_profile_counts_replica_writes_by_keyspace_and_cpu_by_service() -> None:
    from loadtest import db_profile

    def counters(checkouts: float, shared: float, yangon: float, mandalay: float, api_s: float) -> object:
        return db_profile.parse(
            _vector(({"scope": "Write"}, checkouts * 10)),
            _vector(({"outcome": "completed"}, checkouts * 0.9), ({"outcome": "declined"}, checkouts * 0.1)),
            _vector(({"keyspace": "checkout"}, shared), ({"keyspace": "checkout_yangon"}, yangon),
                    ({"keyspace": "checkout_mandalay"}, mandalay)),
            _vector(({"job": "checkout_api"}, api_s), ({"job": "checkout_consumer"}, api_s / 10),
                    ({"job": "payment_gateway"}, 5.0)),
        )  # fmt: skip

    # A Mandalay node restarted: its keyspace's counter went back and is left out.
    before, after = counters(1000, 6000, 9000, 8000, 100.0), counters(1200, 7200, 13000, 10, 106.0)
    cost = db_profile.cost(before, after)  # type: ignore[arg-type]
    assert cost.ops == pytest.approx(200)
    assert cost.replica_writes == pytest.approx({"checkout": 6.0, "checkout_yangon": 20.0})
    assert cost.replica_writes_total == pytest.approx(26.0)
    assert cost.replica_writes_by_kind() == pytest.approx({"shared": 6.0, "region": 20.0})
    assert cost.cpu_ms == pytest.approx({"checkout_api": 30.0, "checkout_consumer": 3.0})  # the gateway idled
    assert db_profile.describe_replica_writes(cost) == "26.0 (shared 6.0, region 20.0)"
    assert db_profile.describe_cpu(cost) == "API 30.0, consumer 3.0 ms"
    assert cost.figures()["replica_writes_by_kind"] == cost.replica_writes_by_kind()
    assert 'keyspace!="checkout_bench"' in db_profile.REPLICA_WRITES_QUERY
    assert "checkout_api|checkout_consumer|payment_gateway" in db_profile.CPU_QUERY


def test_the_profile_gives_each_checkout_stage_its_mean_in_running_order() -> None:
    from loadtest import db_profile

    def counters(checkouts: float, seconds: dict[str, float], counts: dict[str, float]) -> object:
        return db_profile.parse(
            _vector(({"scope": "Write"}, checkouts)),
            _vector(({}, checkouts)),
            stage_answers=(
                _vector(*(({"stage": s}, v) for s, v in seconds.items())),
                _vector(*(({"stage": s}, v) for s, v in counts.items())),
            ),
        )

    before = counters(100, {"close": 1.0, "charge": 3.0, "cart": 1.0}, {"close": 100, "charge": 100, "cart": 100})
    after = counters(
        300,
        {"close": 3.0, "commit": 5.0, "charge": 9.0, "cart": 2.0},
        {"close": 300, "commit": 200, "charge": 300, "cart": 300},
    )
    cost = db_profile.cost(before, after)  # type: ignore[arg-type]
    # Means of the window (a stage new in it counts from zero), in the order the checkout runs them.
    assert list(cost.stage_ms) == ["cart", "charge", "commit", "close"]
    assert cost.stage_ms == pytest.approx({"cart": 5.0, "charge": 30.0, "commit": 25.0, "close": 10.0})
    assert db_profile.describe_stages(cost) == "cart 5, charge 30, commit 25, close 10 ms"
    assert cost.figures()["stage_ms"] == cost.stage_ms
    # An older deploy exports no stages.
    plain = db_profile.parse(_vector(({"scope": "Write"}, 1)), _vector(({}, 1)))
    assert db_profile.describe_stages(db_profile.cost(plain, after)) != "no figures"  # type: ignore[arg-type]
    assert db_profile.describe_stages(db_profile.cost(plain, plain)) == "no figures"


def test_replicas_per_row_sum_the_dc_factors() -> None:
    from loadtest.db_profile import derived_factors, replicas_per_row

    assert replicas_per_row({"Yangon": 2, "Mandalay": "2", "Naypyitaw": 2}) == 6
    by_dc = {"Yangon": ["a1", "a2"], "Mandalay": ["b1", "b2", "b3", "b4"], "Naypyitaw": ["c1"]}
    assert derived_factors(by_dc) == {"Yangon": 2, "Mandalay": 3, "Naypyitaw": 1}
    assert replicas_per_row(derived_factors(by_dc)) == 6


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"status": "error", "error": "parse error"}, "refused the query: parse error"),
        (_vector(), "no cassandra_clientrequest_latency_count series"),
    ],
)
def test_the_database_profile_says_why_it_has_no_figures(answer: dict[str, object], message: str) -> None:
    from loadtest import db_profile

    with pytest.raises(db_profile.ProfileUnavailable, match=message):
        db_profile.parse(answer, _vector(({}, 1)))  # type: ignore[arg-type]


def test_the_run_window_maps_to_the_stores_days() -> None:
    from loadtest.verify import store_days

    evening = datetime(2026, 11, 22, 17, 20, tzinfo=UTC)  # 23:50 in the stores
    assert list(store_days(evening, evening)) == [datetime(2026, 11, 22).date()]
    assert list(store_days(evening, datetime(2026, 11, 22, 17, 40, tzinfo=UTC))) == [
        datetime(2026, 11, 22).date(),
        datetime(2026, 11, 23).date(),
    ]


def _stored(invoice: str, sold_at: datetime, lines: int = 1) -> dict[str, object]:
    """A `sales` row as the audit reads it (invoice_id, sold_at, lines): the app's sale_row
    of a drawn basket, the sale time naive UTC as the driver returns it."""
    from loadtest.raw_cassandra import sale_templates

    template = next(t for t in sale_templates(5, 50) if len(json.loads(t["lines"])) == lines)
    return {"invoice_id": invoice, "sold_at": sold_at.replace(tzinfo=None), "lines": template["lines"]}


def test_the_audit_wants_each_acknowledged_invoice_once_in_every_dc() -> None:
    from loadtest.verify import audit

    start = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
    end = datetime(2026, 11, 29, 10, 5, tzinfo=UTC)
    during = datetime(2026, 11, 29, 10, 1, tzinfo=UTC)
    yangon = [_stored("i1", during, 2), _stored("i2", during)]
    clean = audit(["i1", "i2"], {"Yangon": yangon, "Mandalay": list(yangon)}, start, end)
    assert clean == StoredSales(2, 2, 3, [], 2, [], [], ("Yangon", "Mandalay"))

    # Not yet in Mandalay; stored twice (under two sale times) in Yangon; a stranger in the
    # window; an older sale just before it is neither.
    before = datetime(2026, 11, 29, 9, 59, 30, tzinfo=UTC)
    rows = {
        "Yangon": [*yangon, _stored("i2", during.replace(second=9)), _stored("x", during), _stored("old", before)],
        "Mandalay": [yangon[1]],
    }
    found = audit(["i1", "i2"], rows, start, end)
    assert (found.found, found.missing, found.duplicated, found.unexpected) == (0, ["i1"], ["i2"], ["x"])
    assert found.in_window == 3


def test_the_raw_writer_writes_the_apps_sale_row() -> None:
    import time

    from checkout.events import SALE_COLUMNS, line_rows

    from loadtest.raw_cassandra import _rows

    row = dict(zip(SALE_COLUMNS, next(_rows(time.monotonic() + 5, 1)), strict=True))
    assert row["day"] == row["sold_at"].astimezone(STORE_TZ).date()
    lines = line_rows(row)
    assert 1 <= len(lines) <= 5
    assert sum((line["total"] for line in lines), Decimal(0)) == row["total"]


def test_the_web_ui_starts_with_the_slo_users_unless_told_otherwise() -> None:
    from loadtest.pacing import users_for
    from loadtest.slo import Slo
    from loadtest.targets import Targets
    from loadtest.web import locust_command

    targets = Targets(
        api_by_branch={"A": "http://a:8080", "B": "http://b:8080"},
        cassandra_by_dc={},
        kafka_bootstrap=[],
        kafka_hosts=[],
        prometheus=None,
        lab_vms=[],
    )
    assert users_for(50.0) == (50, 5.0)
    command = locust_command([], targets)
    assert command[command.index("--users") + 1] == str(users_for(Slo.rate)[0])
    assert command[command.index("--spawn-rate") + 1] == f"{users_for(Slo.rate)[1]:g}"
    assert command[command.index("--branch-hosts") + 1] == "A=http://a:8080,B=http://b:8080"
    # The user's own figures win; a worker gets no host or users (its master has them).
    assert "--spawn-rate" not in locust_command(["-u", "5"], targets)
    assert "--users" not in locust_command(["--users=7"], targets)
    assert locust_command(["--worker"], None)[-1] == "--worker"
    assert "--host" not in locust_command(["--worker"], None)
