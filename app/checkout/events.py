"""The checkout event: one completed sale, as published to Kafka.

API checkouts and replayed dataset rows produce the same shape, so the consumer and the
streaming analytics handle both alike. Money travels as decimal strings so no float ever
rounds it. `version` changes only for incompatible changes; added optional fields keep
the version, which is why unknown fields are ignored rather than refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields
from decimal import Decimal
from typing import Any, Literal, Protocol, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from checkout.catalog import product_id_for
from checkout.dataset import DatasetRow
from checkout.domain import (
    CITY_BY_BRANCH,
    STORE_TZ,
    Branch,
    CustomerType,
    Gender,
    PaymentMethod,
    ProductLine,
    check_city,
)
from checkout.pricing import LinePrice, price_invoice, price_line


class SaleLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    product_id: str = Field(min_length=1, max_length=64)
    product_line: ProductLine
    unit_price: Decimal = Field(gt=0)
    quantity: int = Field(gt=0)
    cogs: Decimal
    tax: Decimal
    total: Decimal
    gross_income: Decimal
    gross_margin_pct: Decimal

    @classmethod
    def priced(cls, product_id: str, product_line: ProductLine, price: LinePrice) -> SaleLine:
        return cls(product_id=product_id, product_line=product_line, **asdict(price))

    def price(self) -> LinePrice:
        """The line's money as pricing computes it (SaleLine carries every LinePrice field)."""
        return LinePrice(**{f.name: getattr(self, f.name) for f in fields(LinePrice)})


class SaleEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    type: Literal["checkout.sale"] = "checkout.sale"
    version: Literal[1] = 1
    invoice_id: str = Field(min_length=1, max_length=64)
    source: Literal["api", "replay"]
    region: str = ""
    branch: Branch
    city: str
    sold_at: AwareDatetime
    payment: PaymentMethod
    customer_type: CustomerType
    gender: Gender | None = None
    rating: Decimal | None = Field(default=None, ge=0, le=10)
    lines: tuple[SaleLine, ...] = Field(min_length=1)
    cogs: Decimal
    tax: Decimal
    total: Decimal
    gross_income: Decimal
    # True for API sales: the API moved their stock when the payment was approved.
    # Replayed dataset rows are history (backfill for reports) and move no stock today.
    # Consumers store the sale either way and never move stock themselves.
    stock_moved: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """Refuse any event whose money does not follow the formulas: a consumer must
        never store a sale it cannot explain."""
        check_city(self.branch, self.city)
        for line in self.lines:
            if line.product_id != product_id_for(line.product_line, line.unit_price):
                raise ValueError(f"product_id {line.product_id} does not match its line and price")
            if line.price() != price_line(line.unit_price, line.quantity):
                raise ValueError(f"line {line.product_id} is not priced by the dataset formulas")
        totals = price_invoice(line.price() for line in self.lines)
        if (self.cogs, self.tax, self.total, self.gross_income) != (
            totals.cogs,
            totals.tax,
            totals.total,
            totals.gross_income,
        ):
            raise ValueError("invoice totals are not the sum of its lines")
        return self

    def to_json_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_json_bytes(cls, payload: bytes) -> SaleEvent:
        return cls.model_validate_json(payload)


class PublishError(Exception):
    """The broker did not acknowledge an event; it may or may not have been stored."""


class EventPublisher(Protocol):
    async def publish(self, event: SaleEvent) -> None:
        """Return once the broker acknowledged the event; raise PublishError otherwise."""
        ...


def build_event(
    *,
    invoice_id: str,
    source: Literal["api", "replay"],
    region: str,
    branch: Branch,
    sold_at: AwareDatetime,
    payment: PaymentMethod,
    customer_type: CustomerType,
    gender: Gender | None,
    rating: Decimal | None,
    lines: tuple[SaleLine, ...],
    stock_moved: bool = False,
) -> SaleEvent:
    totals = price_invoice(line.price() for line in lines)
    return SaleEvent(
        invoice_id=invoice_id,
        source=source,
        region=region,
        branch=branch,
        city=CITY_BY_BRANCH[branch],
        sold_at=sold_at,
        payment=payment,
        customer_type=customer_type,
        gender=gender,
        rating=rating,
        lines=lines,
        cogs=totals.cogs,
        tax=totals.tax,
        total=totals.total,
        gross_income=totals.gross_income,
        stock_moved=stock_moved,
    )


def event_from_row(row: DatasetRow, region: str = "") -> SaleEvent:
    line = SaleLine.priced(
        product_id_for(row.product_line, row.unit_price),
        row.product_line,
        price_line(row.unit_price, row.quantity),
    )
    return build_event(
        invoice_id=row.invoice_id,
        source="replay",
        region=region,
        branch=row.branch,
        sold_at=row.sold_at,
        payment=row.payment,
        customer_type=row.customer_type,
        gender=row.gender,
        rating=row.rating,
        lines=(line,),
    )


# The form stored in Cassandra: one row per invoice, with the local day and hour
# precomputed so that reports never need time-zone arithmetic, and the lines inside as a
# JSON array (money as decimal strings, exactly as in the event).
SALE_COLUMNS = (
    "branch",
    "day",
    "sold_at",
    "invoice_id",
    "hour",
    "city",
    "region",
    "source",
    "payment",
    "customer_type",
    "gender",
    "rating",
    "cogs",
    "tax",
    "total",
    "gross_income",
    "lines",
)
_LINES = TypeAdapter(tuple[SaleLine, ...])


def sale_row(event: SaleEvent) -> dict[str, Any]:
    """The event as its one stored row."""
    local = event.sold_at.astimezone(STORE_TZ)
    return {
        "branch": event.branch.value,
        "day": local.date(),
        "sold_at": event.sold_at,
        "invoice_id": event.invoice_id,
        "hour": local.hour,
        "city": event.city,
        "region": event.region,
        "source": event.source,
        "payment": event.payment.value,
        "customer_type": event.customer_type.value,
        "gender": None if event.gender is None else event.gender.value,
        "rating": event.rating,
        "cogs": event.cogs,
        "tax": event.tax,
        "total": event.total,
        "gross_income": event.gross_income,
        "lines": _LINES.dump_json(event.lines).decode(),
    }


def stored_lines(row: Mapping[str, Any]) -> tuple[SaleLine, ...]:
    """The lines of a stored sale row (a Cassandra row as a mapping, or sale_row() output)."""
    return _LINES.validate_json(row["lines"])


def line_rows(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A stored sale row flattened to one mapping per line (line_no from 1), the invoice's
    columns repeated on each: the shape reports aggregate."""
    invoice = {k: v for k, v in row.items() if k != "lines"}
    return [
        {**invoice, "line_no": line_no, **line.model_dump()}
        for line_no, line in enumerate(stored_lines(row), start=1)
    ]


def sale_rows(event: SaleEvent) -> list[dict[str, Any]]:
    """The event's lines as report rows (what line_rows() gives for its stored row)."""
    return line_rows(sale_row(event))
