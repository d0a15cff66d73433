"""What a reconcile run leaves for the node exporter's textfile collector."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from checkout.reconcile_metrics import write_run


def samples(path: Path) -> dict[str, float]:
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(path.read_text())
        for sample in family.samples
    }


def test_a_run_writes_its_outcome_and_interval(tmp_path: Path) -> None:
    path = tmp_path / "textfile" / "checkout_reconcile.prom"
    write_run(path, now=1000.0, succeeded=True, every_s=900.0, without_sale=2, voided=2)
    assert samples(path) == {
        "checkout_reconcile_last_run_timestamp_seconds": 1000.0,
        "checkout_reconcile_last_run_success": 1.0,
        "checkout_reconcile_last_success_timestamp_seconds": 1000.0,
        "checkout_reconcile_interval_seconds": 900.0,
        "checkout_reconcile_charges_without_sale": 2.0,
        "checkout_reconcile_charges_voided": 2.0,
    }
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_a_failed_run_keeps_the_last_success(tmp_path: Path) -> None:
    path = tmp_path / "checkout_reconcile.prom"
    write_run(path, now=1000.0, succeeded=True, every_s=900.0, without_sale=0, voided=0)
    write_run(path, now=1900.0, succeeded=False, every_s=900.0, without_sale=None, voided=None)
    assert samples(path) == {
        "checkout_reconcile_last_run_timestamp_seconds": 1900.0,
        "checkout_reconcile_last_run_success": 0.0,
        "checkout_reconcile_last_success_timestamp_seconds": 1000.0,
        "checkout_reconcile_interval_seconds": 900.0,
    }


def test_a_first_run_that_fails_has_no_success_to_report(tmp_path: Path) -> None:
    path = tmp_path / "checkout_reconcile.prom"
    write_run(path, now=5.0, succeeded=False, every_s=None, without_sale=None, voided=None)
    assert samples(path) == {
        "checkout_reconcile_last_run_timestamp_seconds": 5.0,
        "checkout_reconcile_last_run_success": 0.0,
    }
