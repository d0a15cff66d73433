"""Price arithmetic with the dataset's formulas, in exact decimals.

The dataset never rounds money: tax is exactly 5% of unit price x quantity (26.1415 for
74.69 x 7), total is cost of goods sold plus tax, gross income equals the tax, and the
gross margin percentage is gross income / total x 100 printed with 9 decimals
(4.761904762). Rounding to cents happens only where money is actually charged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

TAX_RATE = Decimal("0.05")
_MARGIN_QUANTUM = Decimal("0.000000001")
_CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class LinePrice:
    unit_price: Decimal
    quantity: int
    cogs: Decimal
    tax: Decimal
    total: Decimal
    gross_income: Decimal
    gross_margin_pct: Decimal


@dataclass(frozen=True, slots=True)
class InvoicePrice:
    cogs: Decimal
    tax: Decimal
    total: Decimal
    gross_income: Decimal
    gross_margin_pct: Decimal

    @property
    def amount_due(self) -> Decimal:
        """What the shopper pays: the total rounded to cents, half up as tills do."""
        return self.total.quantize(_CENT, rounding=ROUND_HALF_UP)


def margin_pct(gross_income: Decimal, total: Decimal) -> Decimal:
    if total == 0:
        return Decimal(0)
    return (gross_income / total * 100).quantize(_MARGIN_QUANTUM, rounding=ROUND_HALF_EVEN)


def price_line(unit_price: Decimal, quantity: int) -> LinePrice:
    if unit_price <= 0:
        raise ValueError(f"unit price must be positive, got {unit_price}")
    if quantity <= 0:
        raise ValueError(f"quantity must be positive, got {quantity}")
    cogs = unit_price * quantity
    tax = cogs * TAX_RATE
    total = cogs + tax
    return LinePrice(
        unit_price=unit_price,
        quantity=quantity,
        cogs=cogs,
        tax=tax,
        total=total,
        gross_income=tax,
        gross_margin_pct=margin_pct(tax, total),
    )


def price_invoice(lines: Iterable[LinePrice]) -> InvoicePrice:
    cogs = tax = total = Decimal(0)
    for line in lines:
        cogs += line.cogs
        tax += line.tax
        total += line.total
    return InvoicePrice(
        cogs=cogs, tax=tax, total=total, gross_income=tax, gross_margin_pct=margin_pct(tax, total)
    )
