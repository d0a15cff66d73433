"""The reconciler: approved charges without a stored sale are voided, and only those."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from checkout.errors import DependencyUnavailable
from checkout.payments import ApprovedCharge
from checkout.reconcile import Reconciled, main, reconcile

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class Report:
    def __init__(self, charges: list[ApprovedCharge]) -> None:
        self.charges = charges
        self.voided: list[str] = []
        self.asked_before: datetime | None = None

    async def approved_before(
        self, before: datetime, limit: int, after: ApprovedCharge | None = None
    ) -> list[ApprovedCharge]:
        self.asked_before = before
        ordered = sorted(self.charges, key=lambda c: (c.decided_at, c.key))
        return [
            c
            for c in ordered
            if c.decided_at < before
            and (after is None or (c.decided_at, c.key) > (after.decided_at, after.key))
        ][:limit]

    async def void(self, key: str) -> None:
        self.voided.append(key)


class Sales:
    def __init__(self, stored: set[str]) -> None:
        self.stored_invoices = stored

    async def stored(self, invoice_id: str, sold_at: datetime) -> bool:
        return invoice_id in self.stored_invoices


def charge(key: str, minutes_ago: float) -> ApprovedCharge:
    return ApprovedCharge(key, f"inv-{key}", NOW - timedelta(minutes=minutes_ago))


def run(report: Report, sales: Sales, *, void: bool, lag: int = 0) -> Reconciled:
    async def writer_lag() -> int:
        return lag

    return asyncio.run(
        reconcile(
            report,
            sales,
            older_than=timedelta(minutes=30),
            since=timedelta(hours=24),
            page_size=2,
            void=void,
            writer_lag=writer_lag,
            now=NOW,
        )
    )


def test_only_charges_in_the_window_without_a_sale_are_voided_page_by_page() -> None:
    ages = {"old": 25 * 60, "sold": 60, "orphan": 45, "sold2": 44, "orphan2": 40, "recent": 5}
    report = Report([charge(key, minutes) for key, minutes in ages.items()])
    done = run(report, Sales({"inv-sold", "inv-sold2"}), void=True)
    assert report.asked_before == NOW - timedelta(minutes=30)
    # "recent" may still be retried by its till; "old" is past the gateway's 24 h.
    assert report.voided == ["orphan", "orphan2"]
    assert (done.checked, done.with_sale, done.voided) == (4, 2, 2)


def test_without_void_it_only_reports() -> None:
    report = Report([charge("orphan", 45)])
    done = run(report, Sales(set()), void=False)
    assert (report.voided, done.without_sale, done.voided) == ([], ["orphan"], 0)


def test_it_voids_nothing_while_the_writer_is_behind() -> None:
    report = Report([charge("orphan", 45)])
    with pytest.raises(DependencyUnavailable, match="3 records behind"):
        run(report, Sales(set()), void=True, lag=3)
    assert report.voided == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--older-than-min", "-1"], "--older-than-min must be"),
        (["--since-h", "0.1", "--older-than-min", "30"], "--older-than-min must be"),
        (["--every-min", "15"], "--every-min needs --textfile"),
        (["--textfile", "x.prom", "--every-min", "0"], "--every-min needs --textfile"),
    ],
)
def test_bad_flags_are_refused(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_a_refused_run_still_writes_its_textfile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def refused(_: object) -> Reconciled:
        raise DependencyUnavailable("the sales writer is 3 records behind")

    monkeypatch.setattr("checkout.reconcile._run", refused)
    textfile = tmp_path / "checkout_reconcile.prom"
    assert main(["--void", "--textfile", str(textfile), "--every-min", "15"]) == 1
    assert "3 records behind" in capsys.readouterr().err
    text = textfile.read_text()
    assert "checkout_reconcile_last_run_success 0.0" in text
    assert "checkout_reconcile_interval_seconds 900.0" in text
