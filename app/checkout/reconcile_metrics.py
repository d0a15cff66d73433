"""What a reconcile run leaves for Prometheus, through the node exporter's textfile
collector: a one-shot job has no /metrics of its own to scrape.

The last success survives failed runs (it is read back from the previous file), so an
alert can tell "the reconciler has not succeeded for three of its intervals" from one run
that refused to void while the sales writer lagged.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile
from prometheus_client.parser import text_string_to_metric_families

LAST_SUCCESS = "checkout_reconcile_last_success_timestamp_seconds"


def previous_success(path: Path) -> float | None:
    """The last success recorded in `path`, if it holds one."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == LAST_SUCCESS:
                return float(sample.value)
    return None


def write_run(
    path: Path,
    *,
    now: float,
    succeeded: bool,
    every_s: float | None,
    without_sale: int | None,
    voided: int | None,
) -> None:
    """Write the run's gauges to `path` atomically (a temporary file, then a rename)."""
    registry = CollectorRegistry()

    def gauge(name: str, doc: str, value: float) -> None:
        Gauge(name, doc, registry=registry).set(value)

    gauge("checkout_reconcile_last_run_timestamp_seconds", "When the last run ended.", now)
    gauge("checkout_reconcile_last_run_success", "1 if the last run finished.", int(succeeded))
    success = now if succeeded else previous_success(path)
    if success is not None:
        gauge(LAST_SUCCESS, "When a run last finished.", success)
    if every_s is not None:
        gauge("checkout_reconcile_interval_seconds", "How often the timer runs it.", every_s)
    if without_sale is not None:
        gauge(
            "checkout_reconcile_charges_without_sale",
            "Approved charges the last run found without a stored sale.",
            without_sale,
        )
    if voided is not None:
        gauge("checkout_reconcile_charges_voided", "Charges the last run voided.", voided)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
