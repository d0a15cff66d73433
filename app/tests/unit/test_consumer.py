import asyncio
import json
from collections.abc import Sequence

import pytest

from checkout.consumer import Consumed, Poison, SalesPipeline, decode, next_offsets
from checkout.dataset import DatasetRow
from checkout.errors import DependencyUnavailable
from checkout.events import event_from_row
from tests.unit.fakes import FakeSaleWriter


class RecordingDeadLetters:
    def __init__(self) -> None:
        self.sent: list[tuple[Consumed, Poison]] = []

    async def send(self, record: Consumed, poison: Poison) -> None:
        self.sent.append((record, poison))


def consumed(offset: int, value: bytes | None, partition: int = 0) -> Consumed:
    return Consumed("checkout-sales", partition, offset, b"A", value)


def good(row: DatasetRow, offset: int, partition: int = 0) -> Consumed:
    return consumed(offset, event_from_row(row).to_json_bytes(), partition)


def run(pipeline: SalesPipeline, records: Sequence[Consumed]) -> dict[tuple[str, int], int]:
    return asyncio.run(pipeline.process(records))


def test_poison_messages_go_to_the_dead_letter_topic_with_a_reason(
    dataset_rows: list[DatasetRow],
) -> None:
    writer, dead = FakeSaleWriter(), RecordingDeadLetters()
    tampered = json.loads(event_from_row(dataset_rows[1]).to_json_bytes())
    tampered["total"] = "1.00"
    future = json.loads(event_from_row(dataset_rows[2]).to_json_bytes())
    future["version"] = 2
    records = [
        good(dataset_rows[0], 10),
        consumed(11, b"{not json"),
        consumed(12, None),
        consumed(13, json.dumps(tampered).encode()),
        consumed(14, json.dumps(future).encode()),
        good(dataset_rows[3], 15),
    ]
    offsets = run(SalesPipeline(writer, dead), records)
    assert offsets == {("checkout-sales", 0): 16}
    assert set(writer.rows) == {dataset_rows[0].invoice_id, dataset_rows[3].invoice_id}
    reasons = [(r.offset, p.reason) for r, p in dead.sent]
    assert reasons == [
        (11, "malformed_json"),
        (12, "empty_message"),
        (13, "invalid_event"),
        (14, "unsupported_event"),
    ]
    assert "invoice totals are not the sum of its lines" in dead.sent[2][1].detail


def test_a_redelivered_batch_stores_each_sale_once(dataset_rows: list[DatasetRow]) -> None:
    writer = FakeSaleWriter()
    pipeline = SalesPipeline(writer, RecordingDeadLetters())
    batch = [good(row, i) for i, row in enumerate(dataset_rows[:50])]
    run(pipeline, batch)
    run(pipeline, batch)
    assert len(writer.rows) == 50


def test_unavailable_storage_fails_the_batch_so_nothing_is_committed(
    dataset_rows: list[DatasetRow],
) -> None:
    pipeline = SalesPipeline(FakeSaleWriter(unavailable=True), RecordingDeadLetters())
    with pytest.raises(DependencyUnavailable):
        run(pipeline, [good(dataset_rows[0], 0)])


def test_a_row_cassandra_refuses_is_dead_lettered_alone(dataset_rows: list[DatasetRow]) -> None:
    writer = FakeSaleWriter(rejected_invoices={dataset_rows[1].invoice_id})
    dead = RecordingDeadLetters()
    records = [good(row, i) for i, row in enumerate(dataset_rows[:3])]
    offsets = run(SalesPipeline(writer, dead), records)
    assert offsets == {("checkout-sales", 0): 3}
    assert set(writer.rows) == {dataset_rows[0].invoice_id, dataset_rows[2].invoice_id}
    assert [(r.offset, p.reason) for r, p in dead.sent] == [(1, "write_rejected")]


def test_offsets_are_one_past_the_last_record_of_each_partition() -> None:
    records = [consumed(5, b"", 0), consumed(7, b"", 0), consumed(3, b"", 2)]
    assert next_offsets(records) == {("checkout-sales", 0): 8, ("checkout-sales", 2): 4}


def test_decode_accepts_a_valid_event(dataset_rows: list[DatasetRow]) -> None:
    assert decode(good(dataset_rows[0], 0)) == event_from_row(dataset_rows[0])
