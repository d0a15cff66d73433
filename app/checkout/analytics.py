"""Sales reports: one aggregation core fed two ways.

Batch: the `sales` rows read back from Cassandra (one per invoice, its lines inside).
Streaming: running totals updated per Kafka event. Both expand their input into the same
facts, one per invoice line (`checkout.events.line_rows` of the stored row; for an event,
`sale_rows`, which is line_rows of the row it is stored as), and feed one Aggregator,
which ignores a line it has already counted, so a redelivered or replayed event changes
no total, as in Cassandra where it overwrites its own row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from checkout.events import SaleEvent, line_rows, sale_rows


@dataclass(frozen=True, slots=True)
class SaleFact:
    invoice_id: str
    line_no: int
    branch: str
    day: date
    hour: int
    product_line: str
    payment: str
    customer_type: str
    gender: str | None
    rating: Decimal | None
    quantity: int
    cogs: Decimal
    tax: Decimal
    total: Decimal
    gross_income: Decimal


def _as_date(value: Any) -> date:
    # cassandra-driver returns its own Date type for CQL `date` columns.
    if isinstance(value, date):
        return value
    converted: date = value.date()
    return converted


def fact_from_line(row: Mapping[str, Any]) -> SaleFact:
    """One invoice line in the report shape (an item of line_rows() or sale_rows())."""
    return SaleFact(
        invoice_id=row["invoice_id"],
        line_no=row["line_no"],
        branch=row["branch"],
        day=_as_date(row["day"]),
        hour=row["hour"],
        product_line=str(row["product_line"]),
        payment=row["payment"],
        customer_type=row["customer_type"],
        gender=row["gender"],
        rating=row["rating"],
        quantity=row["quantity"],
        cogs=row["cogs"],
        tax=row["tax"],
        total=row["total"],
        gross_income=row["gross_income"],
    )


def facts_from_sale(row: Mapping[str, Any]) -> list[SaleFact]:
    """The facts of one stored `sales` row (a Cassandra row as a mapping, or sale_row()
    output): one per line of its `lines` JSON."""
    return [fact_from_line(line) for line in line_rows(row)]


def facts_from_event(event: SaleEvent) -> list[SaleFact]:
    return [fact_from_line(line) for line in sale_rows(event)]


def _band(value: Decimal | None, width: int) -> str:
    if value is None:
        return "unknown"
    low = int(value // width) * width
    return f"{low:02d}-{low + width:02d}"


# Report name -> how a fact is grouped. Bands make the continuous measures reportable.
DIMENSIONS: dict[str, Callable[[SaleFact], str]] = {
    "branch": lambda f: f.branch,
    "day": lambda f: f.day.isoformat(),
    "hour": lambda f: f"{f.hour:02d}",
    "product_line": lambda f: f.product_line,
    "payment": lambda f: f.payment,
    "customer_type": lambda f: f.customer_type,
    "gender": lambda f: f.gender or "unknown",
    "gross_income": lambda f: _band(f.gross_income, 10),
    # A perfect 10 joins the 9-10 band rather than forming a band of its own.
    "rating": lambda f: _band(None if f.rating is None else min(f.rating, Decimal("9.9")), 1),
}


@dataclass(slots=True)
class Totals:
    invoices: set[str] = field(default_factory=set)
    lines: int = 0
    quantity: int = 0
    cogs: Decimal = Decimal(0)
    tax: Decimal = Decimal(0)
    total: Decimal = Decimal(0)
    gross_income: Decimal = Decimal(0)
    rating_sum: Decimal = Decimal(0)
    rating_count: int = 0

    def add(self, fact: SaleFact) -> None:
        self.invoices.add(fact.invoice_id)
        self.lines += 1
        self.quantity += fact.quantity
        self.cogs += fact.cogs
        self.tax += fact.tax
        self.total += fact.total
        self.gross_income += fact.gross_income
        if fact.rating is not None:
            self.rating_sum += fact.rating
            self.rating_count += 1


@dataclass(frozen=True, slots=True)
class ReportRow:
    key: str
    invoices: int
    quantity: int
    cogs: Decimal
    tax: Decimal
    total: Decimal
    gross_income: Decimal
    avg_rating: Decimal | None


class Aggregator:
    """Running totals per report; add facts one by one (stream) or all at once (batch)."""

    def __init__(self, dimensions: Iterable[str] = DIMENSIONS) -> None:
        self._dimensions = {name: DIMENSIONS[name] for name in dimensions}
        self._groups: dict[str, dict[str, Totals]] = {name: {} for name in self._dimensions}
        self._seen: set[tuple[str, int]] = set()

    def add(self, fact: SaleFact) -> bool:
        """Count a fact once; return False for one already counted."""
        identity = (fact.invoice_id, fact.line_no)
        if identity in self._seen:
            return False
        self._seen.add(identity)
        for name, key_of in self._dimensions.items():
            self._groups[name].setdefault(key_of(fact), Totals()).add(fact)
        return True

    def add_all(self, facts: Iterable[SaleFact]) -> Aggregator:
        for fact in facts:
            self.add(fact)
        return self

    @property
    def facts(self) -> int:
        return len(self._seen)

    def report(self, name: str) -> list[ReportRow]:
        return [
            ReportRow(
                key=key,
                invoices=len(t.invoices),
                quantity=t.quantity,
                cogs=t.cogs,
                tax=t.tax,
                total=t.total,
                gross_income=t.gross_income,
                avg_rating=(t.rating_sum / t.rating_count).quantize(Decimal("0.01"))
                if t.rating_count
                else None,
            )
            for key, t in sorted(self._groups[name].items())
        ]

    def reports(self) -> dict[str, list[ReportRow]]:
        return {name: self.report(name) for name in self._dimensions}


def format_table(name: str, rows: list[ReportRow]) -> str:
    header = ("by " + name, "invoices", "quantity", "total", "gross income", "avg rating")
    body = [
        (
            row.key,
            str(row.invoices),
            str(row.quantity),
            f"{row.total:,.2f}",
            f"{row.gross_income:,.2f}",
            "-" if row.avg_rating is None else str(row.avg_rating),
        )
        for row in rows
    ]
    if rows:
        body.append(
            (
                "all",
                "",  # an invoice may span groups (lines), so invoice counts do not add up
                str(sum(r.quantity for r in rows)),
                f"{sum((r.total for r in rows), Decimal(0)):,.2f}",
                f"{sum((r.gross_income for r in rows), Decimal(0)):,.2f}",
                "",
            )
        )
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
            for i, cell in enumerate(line)
        )
        for line in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


_MAX_DAY_PANELS = 6


def day_runs(rows: list[ReportRow]) -> list[list[ReportRow]]:
    """Rows of the day report split where a day is missing: the dataset's quarter of 2019
    and the days the lab sold on are years apart and are drawn as separate panels."""
    runs: list[list[ReportRow]] = []
    previous: date | None = None
    for row in rows:
        day = date.fromisoformat(row.key)
        if previous is None or (day - previous).days > 1:
            runs.append([])
        runs[-1].append(row)
        previous = day
    return runs


def write_chart(name: str, rows: list[ReportRow], out_dir: Path, title_suffix: str = "") -> Path:
    """A PNG of total sales per group, split into cost of goods and gross income (the
    two add up to the total), with the invoice count on each bar; a line over days, one
    panel per run of consecutive days, each with its own scale."""
    import matplotlib  # noqa: PLC0415 - loaded only when charts are asked for

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.ticker import FuncFormatter  # noqa: PLC0415

    out_dir.mkdir(parents=True, exist_ok=True)
    keys = [row.key for row in rows]
    runs = day_runs(rows) if name == "day" and rows else [rows]
    if len(runs) > _MAX_DAY_PANELS:
        runs = [rows]
    width = 11.0 if name == "day" else min(14.0, max(6.5, len(keys) * 0.45 + 3))
    fig, axes = plt.subplots(
        1,
        len(runs),
        figsize=(width, 5.2),
        squeeze=False,
        layout="constrained",
        # A short run still gets room for its labels next to the dataset's 89 days.
        width_ratios=[max(len(run), len(keys) // 7, 1) for run in runs],
    )
    # Thousands separators instead of matplotlib's "1e6" offset.
    money = FuncFormatter(lambda value, _: f"{value:,.0f}")
    for ax, run in zip(axes[0], runs, strict=True):
        run_keys = [row.key for row in run]
        if name == "day":
            marker = "o" if len(run) == 1 else "."
            ax.plot(run_keys, [float(r.total) for r in run], marker=marker, label="total sales")
            step = max(1, len(run_keys) // max(2, 15 * len(run_keys) // len(keys)))
            ticks = run_keys[::step]
            if ticks[-1] != run_keys[-1]:
                ticks.append(run_keys[-1])
            ax.set_xticks(ticks)
            ax.tick_params(axis="x", labelrotation=45, labelsize=7)
            if len(runs) > 1:
                span = run_keys[0] if len(run) == 1 else f"{run_keys[0]} .. {run_keys[-1]}"
                ax.set_title(f"{span}\n{len(run)} day{'s' if len(run) > 1 else ''}", fontsize=8)
        else:
            cogs = [float(r.cogs) for r in run]
            income = [float(r.gross_income) for r in run]
            ax.bar(run_keys, cogs, label="cost of goods sold")
            bars = ax.bar(run_keys, income, bottom=cogs, label="gross income")
            ax.bar_label(bars, labels=[f"{r.invoices} inv." for r in run], fontsize=7)
            if max((len(k) for k in run_keys), default=0) > 6:
                ax.tick_params(axis="x", labelrotation=30)
                plt.setp(ax.get_xticklabels(), ha="right")
        ax.yaxis.set_major_formatter(money)
        ax.margins(y=0.12)
    axes[0][0].set_ylabel("sales (total incl. 5% tax)")
    fig.suptitle(f"Sales by {name.replace('_', ' ')}{title_suffix}", fontsize=10)
    # Below the axes, so it never covers a bar or its label.
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    path = out_dir / f"sales_by_{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
