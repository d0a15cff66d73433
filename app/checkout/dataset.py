"""Parsing and validation of the supermarket sales CSV (pure: no I/O beyond the lines given).

Every row is checked completely before anyone may use it; a bad row is reported with
its line number in the file (the header is line 1) and the first reason it failed.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from importlib import resources
from typing import TypeVar

from checkout.domain import (
    STORE_TZ,
    Branch,
    CustomerType,
    Gender,
    PaymentMethod,
    ProductLine,
    check_city,
)
from checkout.pricing import price_line

COLUMNS = (
    "Invoice ID",
    "Branch",
    "City",
    "Customer type",
    "Gender",
    "Product line",
    "Unit price",
    "Quantity",
    "Tax 5%",
    "Total",
    "Date",
    "Time",
    "Payment",
    "Cost of goods sold",
    "Gross margin percentage",
    "Gross income",
    "Customer stratification rating",
)

_INVOICE_RE = re.compile(r"^\d{3}-\d{2}-\d{4}$")
_E = TypeVar("_E", Branch, CustomerType, Gender, PaymentMethod, ProductLine)


class RowInvalid(ValueError):
    """A field of a row is malformed; the message says which and why."""


@dataclass(frozen=True, slots=True)
class DatasetRow:
    line_no: int
    invoice_id: str
    branch: Branch
    city: str
    customer_type: CustomerType
    gender: Gender
    product_line: ProductLine
    unit_price: Decimal
    quantity: int
    tax: Decimal
    total: Decimal
    sold_at: datetime
    payment: PaymentMethod
    cogs: Decimal
    gross_margin_pct: Decimal
    gross_income: Decimal
    rating: Decimal


@dataclass(frozen=True, slots=True)
class RowError:
    line_no: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line_no}: {self.reason}"


@dataclass(slots=True)
class ParseResult:
    rows: list[DatasetRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def _enum(kind: type[_E], column: str, value: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(repr(member.value) for member in kind)
        raise RowInvalid(f"{column} {value!r} is not one of {allowed}") from None


def _decimal(column: str, value: str) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise RowInvalid(f"{column} {value!r} is not a number") from None
    if not number.is_finite():
        raise RowInvalid(f"{column} {value!r} is not a finite number")
    return number


def _matches(column: str, given: Decimal, expected: Decimal) -> None:
    if given != expected:
        raise RowInvalid(f"{column} is {given} but the dataset formula gives {expected}")


def _parse_row(line_no: int, record: dict[str, str]) -> DatasetRow:
    invoice_id = record["Invoice ID"]
    if not _INVOICE_RE.match(invoice_id):
        raise RowInvalid(f"Invoice ID {invoice_id!r} is not of the form 123-45-6789")
    branch = _enum(Branch, "Branch", record["Branch"])
    city = record["City"]
    try:
        check_city(branch, city)
    except ValueError as error:
        raise RowInvalid(str(error)) from error
    unit_price = _decimal("Unit price", record["Unit price"])
    if unit_price <= 0:
        raise RowInvalid(f"Unit price {unit_price} must be positive")
    quantity_text = record["Quantity"]
    if not quantity_text.isdigit() or int(quantity_text) <= 0:
        raise RowInvalid(f"Quantity {quantity_text!r} must be a positive whole number")
    quantity = int(quantity_text)
    try:
        sold_at = datetime.strptime(f"{record['Date']} {record['Time']}", "%m/%d/%Y %H:%M").replace(
            tzinfo=STORE_TZ
        )
    except ValueError:
        raise RowInvalid(
            f"Date/Time {record['Date']!r} {record['Time']!r} is not M/D/YYYY HH:MM"
        ) from None
    rating = _decimal("Customer stratification rating", record["Customer stratification rating"])
    if not Decimal(0) <= rating <= Decimal(10):
        raise RowInvalid(f"Customer stratification rating {rating} is outside 0..10")

    expected = price_line(unit_price, quantity)
    row = DatasetRow(
        line_no=line_no,
        invoice_id=invoice_id,
        branch=branch,
        city=city,
        customer_type=_enum(CustomerType, "Customer type", record["Customer type"]),
        gender=_enum(Gender, "Gender", record["Gender"]),
        product_line=_enum(ProductLine, "Product line", record["Product line"]),
        unit_price=unit_price,
        quantity=quantity,
        tax=_decimal("Tax 5%", record["Tax 5%"]),
        total=_decimal("Total", record["Total"]),
        sold_at=sold_at,
        payment=_enum(PaymentMethod, "Payment", record["Payment"]),
        cogs=_decimal("Cost of goods sold", record["Cost of goods sold"]),
        gross_margin_pct=_decimal("Gross margin percentage", record["Gross margin percentage"]),
        gross_income=_decimal("Gross income", record["Gross income"]),
        rating=rating,
    )
    _matches("Cost of goods sold", row.cogs, expected.cogs)
    _matches("Tax 5%", row.tax, expected.tax)
    _matches("Total", row.total, expected.total)
    _matches("Gross income", row.gross_income, expected.gross_income)
    _matches("Gross margin percentage", row.gross_margin_pct, expected.gross_margin_pct)
    return row


def parse_lines(lines: Iterable[str]) -> ParseResult:
    """Parse CSV text lines (header first) into valid rows and per-line errors."""
    result = ParseResult()
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        result.errors.append(RowError(1, "the file is empty; expected a header row"))
        return result
    header = [name.strip().lstrip("\ufeff") for name in header]
    missing = [name for name in COLUMNS if name not in header]
    if missing:
        result.errors.append(RowError(1, f"header lacks column(s): {', '.join(missing)}"))
        return result

    seen: dict[str, int] = {}
    for values in reader:
        line_no = reader.line_num
        if not values or all(not value.strip() for value in values):
            continue
        if len(values) != len(header):
            result.errors.append(
                RowError(line_no, f"has {len(values)} fields, the header has {len(header)}")
            )
            continue
        record = {name: value.strip() for name, value in zip(header, values, strict=True)}
        try:
            row = _parse_row(line_no, record)
        except RowInvalid as error:
            result.errors.append(RowError(line_no, str(error)))
            continue
        if row.invoice_id in seen:
            result.errors.append(
                RowError(
                    line_no, f"Invoice ID {row.invoice_id} repeats line {seen[row.invoice_id]}"
                )
            )
            continue
        seen[row.invoice_id] = line_no
        result.rows.append(row)
    return result


def packaged_dataset_lines() -> list[str]:
    """The dataset shipped inside the package, so nodes need no copy of shared data."""
    text = resources.files("checkout").joinpath("data/supermarket_sales.csv").read_text("utf-8")
    return text.splitlines()
