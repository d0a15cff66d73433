"""Batch (`sales` rows read back from Cassandra, one per invoice with its lines inside)
and streaming (running totals per Kafka event) share one aggregation core; on the same
data they must agree to the last decimal."""

import random
from collections import namedtuple
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from cassandra.util import Date

from checkout.analytics import (
    DIMENSIONS,
    Aggregator,
    day_runs,
    facts_from_event,
    format_table,
    write_chart,
)
from checkout.analytics_cli import main, stored_facts
from checkout.catalog import Catalog
from checkout.dataset import DatasetRow
from checkout.domain import Branch, CustomerType, PaymentMethod
from checkout.events import SALE_COLUMNS, SaleEvent, SaleLine, build_event, event_from_row, sale_row
from checkout.pricing import price_line

Row = namedtuple("Row", SALE_COLUMNS)  # type: ignore[misc]
DayRow = namedtuple("DayRow", ["day"])


class StoredSales:
    """Answers stored_facts' two queries the way cassandra-driver does: namedtuple rows,
    CQL dates as cassandra.util.Date, timestamps as naive UTC, partition by partition."""

    def __init__(self, events: Iterable[SaleEvent]) -> None:
        self.partitions: dict[tuple[str, date], dict[tuple[Any, ...], Row]] = {}
        for event in events:
            row = sale_row(event)
            stored = dict(row)
            stored["day"] = Date(row["day"])
            stored["sold_at"] = row["sold_at"].astimezone(UTC).replace(tzinfo=None)
            key = (stored["sold_at"], row["invoice_id"])
            # Same primary key -> same row: a second write of a sale overwrites it.
            self.partitions.setdefault((row["branch"], row["day"]), {})[key] = Row(**stored)

    def prepare(self, cql: str, read: bool = False) -> str:
        return cql

    def read_all(self, cql: str, params: tuple[Any, ...]) -> list[Any]:
        if cql.startswith("SELECT day FROM sale_days WHERE branch = ?"):
            days = sorted(day for branch, day in self.partitions if branch == params[0])
            return [DayRow(Date(day)) for day in days]
        assert " FROM sales WHERE branch = ? AND day = ?" in cql, cql
        rows = self.partitions[(params[0], params[1].date())]
        return [rows[key] for key in sorted(rows)]


def streamed(events: Iterable[SaleEvent]) -> Aggregator:
    aggregator = Aggregator()
    for event in events:
        for fact in facts_from_event(event):
            aggregator.add(fact)
    return aggregator


def test_batch_and_streaming_agree_on_the_dataset(dataset_rows: list[DatasetRow]) -> None:
    events = [event_from_row(row) for row in dataset_rows]
    # Kafka delivers at least once and out of order across partitions; the stream must not
    # count a redelivered event twice, exactly as Cassandra stores it once.
    delivered = events + random.Random(3).sample(events, 100)
    random.Random(4).shuffle(delivered)

    batch = Aggregator().add_all(stored_facts(StoredSales(delivered), None, None))  # type: ignore[arg-type]
    stream = streamed(delivered)

    assert batch.facts == stream.facts == 1000
    for name in DIMENSIONS:
        assert batch.report(name) == stream.report(name), name


def basket(catalog: Catalog, invoice_id: str, quantities: Iterable[int]) -> SaleEvent:
    """An API-style sale: one invoice, one line per product."""
    products = list(catalog)
    lines = tuple(
        SaleLine.priced(p.product_id, p.product_line, price_line(p.unit_price, quantity))
        for p, quantity in zip(products, quantities, strict=False)
    )
    return build_event(
        invoice_id=invoice_id,
        source="api",
        region="Yangon",
        branch=Branch.A,
        sold_at=datetime(2026, 11, 28, 18, 0, tzinfo=UTC),  # 00:30 on the 29th in the store
        payment=PaymentMethod.CASH,
        customer_type=CustomerType.MEMBER,
        gender=None,
        rating=None,
        lines=lines,
    )


def test_batch_expands_the_lines_of_each_stored_invoice(catalog: Catalog) -> None:
    sales = [basket(catalog, "inv-1", [1, 2, 3]), basket(catalog, "inv-2", [4])]
    stored = StoredSales([*sales, sales[0]])  # the redelivered sale overwrote its own row
    assert sum(len(rows) for rows in stored.partitions.values()) == 2

    facts = list(stored_facts(stored, None, None))  # type: ignore[arg-type]
    assert [(f.invoice_id, f.line_no, f.quantity) for f in facts] == [
        ("inv-1", 1, 1),
        ("inv-1", 2, 2),
        ("inv-1", 3, 3),
        ("inv-2", 1, 4),
    ]
    assert {f.day for f in facts} == {date(2026, 11, 29)}
    assert all(isinstance(f.product_line, str) for f in facts)

    batch = Aggregator().add_all(facts)
    stream = streamed([*sales, sales[0]])
    assert batch.facts == stream.facts == 4
    for name in DIMENSIONS:
        assert batch.report(name) == stream.report(name), name
    (branch_a,) = batch.report("branch")
    assert (branch_a.invoices, branch_a.quantity) == (2, 10)
    assert branch_a.total == sum((sale.total for sale in sales), Decimal(0))


def test_reports_match_the_csv(dataset_rows: list[DatasetRow]) -> None:
    stream = streamed(event_from_row(row) for row in dataset_rows)
    by_branch = {row.key: row for row in stream.report("branch")}
    assert {k: r.invoices for k, r in by_branch.items()} == {"A": 340, "B": 332, "C": 328}
    assert sum((r.total for r in by_branch.values()), Decimal(0)) == sum(
        (r.total for r in dataset_rows), Decimal(0)
    )
    assert sum(r.invoices for r in stream.report("hour")) == 1000
    assert [r.key for r in stream.report("rating")] == [
        "04-05",
        "05-06",
        "06-07",
        "07-08",
        "08-09",
        "09-10",
    ]


def test_batch_reads_only_the_requested_days(dataset_rows: list[DatasetRow]) -> None:
    stored = StoredSales(event_from_row(row) for row in dataset_rows)
    january = list(stored_facts(stored, date(2019, 1, 1), date(2019, 1, 31)))  # type: ignore[arg-type]
    assert january
    assert {f.day.month for f in january} == {1}
    assert len(january) == sum(1 for r in dataset_rows if r.sold_at.month == 1)


def test_tables_and_charts(dataset_rows: list[DatasetRow], tmp_path: Path) -> None:
    rows = streamed(event_from_row(row) for row in dataset_rows[:50]).report("payment")
    table = format_table("payment", rows)
    assert table.splitlines()[0].split()[:2] == ["by", "payment"]
    assert table.splitlines()[-1].startswith("all")
    path = write_chart("payment", rows, tmp_path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_days_years_apart_are_charted_as_separate_panels(
    dataset_rows: list[DatasetRow], tmp_path: Path
) -> None:
    events = [event_from_row(row) for row in dataset_rows]  # every day of the quarter
    live = events[0].model_copy(
        update={"invoice_id": "live-1", "sold_at": datetime(2026, 11, 22, 6, 0, tzinfo=UTC)}
    )
    rows = streamed([*events, live]).report("day")
    runs = day_runs(rows)
    assert len(runs) == 2
    assert [r.key for r in runs[1]] == ["2026-11-22"]
    assert sum(len(run) for run in runs) == len(rows)
    assert write_chart("day", rows, tmp_path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_reports_from_the_csv(tmp_path: Path, capsys: Any) -> None:
    assert main(["csv", "--report", "branch", "--report", "gender", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "1000 sale lines from the packaged dataset" in out
    assert "322,966.75" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "sales_by_branch.png",
        "sales_by_gender.png",
    ]
