from pathlib import Path

import pytest

from checkout.dataset import COLUMNS, packaged_dataset_lines, parse_lines

SHARED_DATASET = Path("/work/shared/data/supermarket_sales.csv")
HEADER = ",".join(COLUMNS)
GOOD = (
    "750-67-8428,A,Yangon,Member,Female,Health and beauty,74.69,7,26.1415,548.9715,"
    "1/5/2019,13:08,Ewallet,522.83,4.761904762,26.1415,9.1"
)


def with_field(index: int, value: str, base: str = GOOD) -> str:
    fields = base.split(",")
    fields[index] = value
    return ",".join(fields)


def test_packaged_dataset_is_valid_and_complete() -> None:
    result = parse_lines(packaged_dataset_lines())
    assert result.errors == []
    assert len(result.rows) == 1000
    assert {row.branch.value for row in result.rows} == {"A", "B", "C"}
    first = result.rows[0]
    assert (first.line_no, first.invoice_id, first.sold_at.isoformat()) == (
        2,
        "750-67-8428",
        "2019-01-05T13:08:00+06:30",
    )


@pytest.mark.skipif(not SHARED_DATASET.exists(), reason="shared dataset not on this machine")
def test_packaged_dataset_is_the_shared_one() -> None:
    assert packaged_dataset_lines() == SHARED_DATASET.read_text("utf-8").splitlines()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (with_field(1, "D"), "Branch 'D' is not one of 'A', 'B', 'C'"),
        (with_field(2, "Mandalay"), "City 'Mandalay' does not match branch A (Yangon)"),
        (with_field(7, "0"), "Quantity '0' must be a positive whole number"),
        (with_field(7, "-3"), "Quantity '-3' must be a positive whole number"),
        (with_field(6, "abc"), "Unit price 'abc' is not a number"),
        (with_field(8, "26.15"), "Tax 5% is 26.15 but the dataset formula gives 26.1415"),
        (with_field(9, "548.97"), "Total is 548.97 but the dataset formula gives 548.9715"),
        (with_field(10, "2019-01-05"), "Date/Time '2019-01-05' '13:08' is not M/D/YYYY HH:MM"),
        (with_field(12, "Bitcoin"), "Payment 'Bitcoin' is not one of"),
        (with_field(0, "75067842"), "Invoice ID '75067842' is not of the form"),
        (with_field(16, "11"), "rating 11 is outside 0..10"),
        (GOOD + ",extra", "has 18 fields, the header has 17"),
    ],
)
def test_a_bad_row_is_reported_with_its_line_and_reason(line: str, reason: str) -> None:
    result = parse_lines([HEADER, with_field(0, "111-11-1111"), line])
    assert [row.line_no for row in result.rows] == [2]
    assert len(result.errors) == 1
    assert result.errors[0].line_no == 3
    assert reason in result.errors[0].reason
    assert str(result.errors[0]).startswith("line 3: ")


def test_repeated_invoice_is_an_error_on_the_later_line() -> None:
    result = parse_lines([HEADER, GOOD, "", GOOD])
    assert len(result.rows) == 1
    assert [(e.line_no, e.reason) for e in result.errors] == [
        (4, "Invoice ID 750-67-8428 repeats line 2")
    ]


def test_header_problems_stop_parsing() -> None:
    assert str(parse_lines([]).errors[0]) == "line 1: the file is empty; expected a header row"
    missing = parse_lines([HEADER.replace(",Payment", ""), GOOD])
    assert missing.rows == []
    assert "header lacks column(s): Payment" in missing.errors[0].reason


def test_quoted_fields_and_a_byte_order_mark_are_accepted() -> None:
    quoted = GOOD.replace("Health and beauty", '"Health and beauty"')
    result = parse_lines(["\ufeff" + HEADER, quoted])
    assert result.errors == []
    assert result.rows[0].product_line.value == "Health and beauty"
