import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from checkout import replay
from checkout.dataset import DatasetRow, packaged_dataset_lines
from checkout.events import SaleEvent, event_from_row


def events(rows: list[DatasetRow]) -> list[SaleEvent]:
    return [event_from_row(row) for row in rows]


def test_default_batches_of_ten_cover_the_dataset_once(dataset_rows: list[DatasetRow]) -> None:
    sent: list[Sequence[SaleEvent]] = []
    count = replay.replay(
        events(dataset_rows),
        sent.append,
        batch_size=10,
        rate=None,
        loop=False,
        stop=threading.Event(),
    )
    assert count == 1000
    assert len(sent) == 100
    assert {len(batch) for batch in sent} == {10}
    assert [e.invoice_id for batch in sent for e in batch] == [r.invoice_id for r in dataset_rows]


def test_rate_paces_batches_against_the_start(dataset_rows: list[DatasetRow]) -> None:
    now = [0.0]
    waits: list[float] = []

    class FakeStop(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waits.append(timeout or 0.0)
            now[0] += timeout or 0.0
            return False

    replay.replay(
        events(dataset_rows[:30]),
        lambda batch: None,
        batch_size=10,
        rate=20.0,
        loop=False,
        stop=FakeStop(),
        clock=lambda: now[0],
    )
    assert waits == [0.5, 0.5, 0.5]


def test_loop_repeats_until_stopped(dataset_rows: list[DatasetRow]) -> None:
    stop = threading.Event()
    sent: list[int] = []

    def publish(batch: Sequence[SaleEvent]) -> None:
        sent.append(len(batch))
        if sum(sent) >= 25:
            stop.set()

    count = replay.replay(
        events(dataset_rows[:10]), publish, batch_size=4, rate=None, loop=True, stop=stop
    )
    assert count == 28  # passes of 4+4+2; stopped inside the third pass
    assert sent == [4, 4, 2, 4, 4, 2, 4, 4]


@pytest.fixture
def bad_csv(tmp_path: Path) -> Path:
    lines = packaged_dataset_lines()[:6]
    for line_no, column, value in ((3, 1, "Q"), (5, 7, "0")):
        fields = lines[line_no - 1].split(",")
        fields[column] = value
        lines[line_no - 1] = ",".join(fields)
    path = tmp_path / "sales.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_strict_sends_nothing_when_a_row_is_bad(
    bad_csv: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_kafka(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("--strict must not connect to Kafka")

    monkeypatch.setattr(replay, "make_producer", no_kafka)
    assert replay.main(["--csv", str(bad_csv), "--strict"]) == 1
    err = capsys.readouterr().err
    assert "line 3: Branch 'Q' is not one of 'A', 'B', 'C'" in err
    assert "line 5: Quantity '0' must be a positive whole number" in err
    assert "nothing was sent" in err


def test_bad_rows_are_reported_and_skipped(
    bad_csv: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sent: list[str] = []

    class Producer:
        def close(self, timeout: float) -> None:
            pass

    monkeypatch.setattr(replay, "make_producer", lambda settings, client_id: Producer())
    monkeypatch.setattr(
        replay,
        "kafka_batch_publisher",
        lambda producer, settings: lambda batch: sent.extend(e.invoice_id for e in batch),
    )
    assert replay.main(["--csv", str(bad_csv), "--batch-size", "2"]) == 0
    captured = capsys.readouterr()
    assert "line 3: Branch 'Q'" in captured.err
    assert "(skipped)" in captured.err
    assert len(sent) == 3
    assert "sent 3 events" in captured.out
