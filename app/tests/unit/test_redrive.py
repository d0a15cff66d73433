import argparse
import json

import pytest

from checkout.dataset import DatasetRow
from checkout.events import event_from_row
from checkout.redrive import Letter, commits, decide, invoice_of, parse_fix, parse_where


def letter(offset: int, value: bytes | None, partition: int = 0) -> Letter:
    return Letter((partition, offset), b"A", value, {"dlq-reason": "invalid_event"})


def test_a_letter_that_now_passes_is_sent_and_one_that_fails_is_kept(
    dataset_rows: list[DatasetRow],
) -> None:
    good = event_from_row(dataset_rows[0]).to_json_bytes()
    broken = json.loads(good)
    del broken["invoice_id"]
    decisions = decide([letter(3, good), letter(4, json.dumps(broken).encode())], {}, [])
    assert [d.action for d in decisions] == ["send", "keep"]
    assert decisions[0].event is not None
    assert "invoice_id" in decisions[1].why


def test_a_fix_replaces_the_body_and_a_skip_gives_the_letter_up(
    dataset_rows: list[DatasetRow],
) -> None:
    fixed = event_from_row(dataset_rows[1]).to_json_bytes()
    decisions = decide([letter(7, b"{not json"), letter(8, b"")], {(0, 7): fixed}, [(0, 8)])
    assert [d.action for d in decisions] == ["send", "skip"]
    assert decisions[0].event is not None
    assert decisions[0].why.startswith("fixed body")


def test_a_fix_that_is_still_wrong_keeps_the_letter() -> None:
    decisions = decide([letter(7, b"{not json")], {(0, 7): b"[]"}, [])
    assert decisions[0].action == "keep"


def test_the_commit_stops_at_the_first_unhandled_letter_and_remembers_the_rest() -> None:
    seen = {0: [5, 6, 7, 8], 1: [2], 2: []}
    assert commits(seen, {}, [(0, 5), (0, 7), (0, 8), (1, 2)]) == {0: (6, [7, 8]), 1: (3, [])}


def test_a_later_run_moves_past_letters_an_earlier_one_handled() -> None:
    # Run 1 committed (6, [7, 8]); run 2 reads 6..8 again and handles 6.
    seen = {0: [6, 7, 8, 9]}
    assert commits(seen, {0: (6, {7, 8})}, [(0, 6)]) == {0: (9, [])}
    # Nothing handled: the commit stays where it was.
    assert commits(seen, {0: (6, {7, 8})}, []) == {0: (6, [7, 8])}


@pytest.mark.parametrize("text", ["3", "a:1", "1:", ":2", "1:-2"])
def test_a_bad_position_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="PARTITION:OFFSET"):
        parse_where(text)


def test_a_fix_needs_a_file() -> None:
    assert parse_fix("0:4=/tmp/e.json")[0] == (0, 4)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_fix("0:4")


def test_the_invoice_is_read_from_a_json_body_only() -> None:
    assert invoice_of(b'{"invoice_id": "750-67-8428"}') == "750-67-8428"
    assert [invoice_of(v) for v in (b"{not json", b"[]", None)] == ["?", "?", "?"]
