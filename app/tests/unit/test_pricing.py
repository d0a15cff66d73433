from decimal import Decimal

import pytest

from checkout.dataset import DatasetRow
from checkout.pricing import price_invoice, price_line


def test_every_dataset_row_is_recomputed_exactly(dataset_rows: list[DatasetRow]) -> None:
    assert len(dataset_rows) == 1000
    for row in dataset_rows:
        price = price_line(row.unit_price, row.quantity)
        assert price.cogs == row.cogs, row.invoice_id
        assert price.tax == row.tax, row.invoice_id
        assert price.total == row.total, row.invoice_id
        assert price.gross_income == row.gross_income, row.invoice_id
        assert price.gross_margin_pct == row.gross_margin_pct, row.invoice_id


def test_dataset_sums_match_when_priced_as_one_invoice(dataset_rows: list[DatasetRow]) -> None:
    invoice = price_invoice(price_line(r.unit_price, r.quantity) for r in dataset_rows)
    assert invoice.total == sum((r.total for r in dataset_rows), Decimal(0))
    assert invoice.total == Decimal("322966.7490")
    assert invoice.gross_income == Decimal("15379.3690")
    assert invoice.gross_margin_pct == Decimal("4.761904762")


def test_first_row_by_hand() -> None:
    price = price_line(Decimal("74.69"), 7)
    assert (price.cogs, price.tax, price.total) == (
        Decimal("522.83"),
        Decimal("26.1415"),
        Decimal("548.9715"),
    )


def test_amount_due_rounds_half_up_to_cents() -> None:
    # 0.05 x 5 x 1.05 = 0.2625 -> 0.26; 0.15 x 1 x 1.05 = 0.1575 -> 0.16
    assert price_invoice([price_line(Decimal("0.05"), 5)]).amount_due == Decimal("0.26")
    assert price_invoice([price_line(Decimal("0.15"), 1)]).amount_due == Decimal("0.16")


@pytest.mark.parametrize(("unit_price", "quantity"), [(Decimal(0), 1), (Decimal(1), 0)])
def test_non_positive_inputs_are_refused(unit_price: Decimal, quantity: int) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        price_line(unit_price, quantity)
