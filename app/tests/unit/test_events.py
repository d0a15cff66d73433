import json
from datetime import date

import pytest
from pydantic import ValidationError

from checkout.dataset import DatasetRow
from checkout.events import SaleEvent, event_from_row, sale_rows


def test_every_dataset_row_round_trips_through_json(dataset_rows: list[DatasetRow]) -> None:
    for row in dataset_rows:
        event = event_from_row(row, region="Yangon")
        assert SaleEvent.from_json_bytes(event.to_json_bytes()) == event


def test_money_travels_as_exact_decimal_strings(dataset_rows: list[DatasetRow]) -> None:
    payload = json.loads(event_from_row(dataset_rows[0]).to_json_bytes())
    assert payload["type"] == "checkout.sale"
    assert payload["version"] == 1
    assert payload["total"] == "548.9715"
    assert payload["lines"][0]["tax"] == "26.1415"
    assert payload["sold_at"] == "2019-01-05T13:08:00+06:30"


def _tampered(row: DatasetRow, **changes: object) -> bytes:
    payload = json.loads(event_from_row(row).to_json_bytes())
    payload.update(changes)
    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"total": "548.98"}, "invoice totals are not the sum of its lines"),
        ({"city": "Mandalay"}, "does not match branch"),
        ({"version": 2}, "version"),
        ({"branch": "Z"}, "branch"),
        ({"lines": []}, "lines"),
    ],
)
def test_inconsistent_events_are_refused(
    dataset_rows: list[DatasetRow], changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        SaleEvent.from_json_bytes(_tampered(dataset_rows[0], **changes))


def test_a_line_priced_off_formula_is_refused(dataset_rows: list[DatasetRow]) -> None:
    payload = json.loads(event_from_row(dataset_rows[0]).to_json_bytes())
    payload["lines"][0]["tax"] = "26.15"
    with pytest.raises(ValidationError, match="not priced by the dataset formulas"):
        SaleEvent.from_json_bytes(json.dumps(payload).encode())


def test_unknown_fields_are_ignored_for_forward_compatibility(
    dataset_rows: list[DatasetRow],
) -> None:
    event = SaleEvent.from_json_bytes(_tampered(dataset_rows[0], loyalty_points=12))
    assert event == event_from_row(dataset_rows[0])


def test_rows_carry_the_local_day_and_hour(dataset_rows: list[DatasetRow]) -> None:
    (row,) = sale_rows(event_from_row(dataset_rows[0]))
    assert (row["branch"], row["day"], row["hour"], row["line_no"]) == (
        "A",
        date(2019, 1, 5),
        13,
        1,
    )
    assert row["invoice_id"] == "750-67-8428"
