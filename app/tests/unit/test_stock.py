"""Stock rules: movements keyed by their cause, a folded level plus the days since."""

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest

from checkout.adapters.cassandra.carts import cart_from_rows
from checkout.cart import CartStatus
from checkout.domain import Branch
from checkout.inventory import (
    SETTLE_DAYS,
    FoldedLevel,
    RestockRefused,
    fold,
    restock_movement,
    settled_until,
    store_day,
    unsettled_days,
)

TODAY = date(2026, 11, 29)


def test_a_read_adds_only_the_days_after_the_folded_level() -> None:
    folded = FoldedLevel(100, TODAY - timedelta(days=SETTLE_DAYS + 1))
    assert unsettled_days(folded, TODAY) == [TODAY - timedelta(days=n) for n in (2, 1, 0)]
    assert unsettled_days(FoldedLevel(100, TODAY), TODAY) == []


def test_folding_is_deterministic_and_never_goes_back() -> None:
    folded = FoldedLevel(100, TODAY - timedelta(days=5))
    sums = {TODAY - timedelta(days=n): -n for n in range(5)}
    until = settled_until(TODAY)
    settled = fold(folded, sums, until)
    assert settled == FoldedLevel(100 - 4 - 3 - 2, until)
    # A second fold (another node, or a stale read) writes the same values or nothing.
    assert fold(folded, sums, until) == settled
    assert fold(settled, sums, until) == settled
    assert fold(settled, sums, until - timedelta(days=1)) == settled


def test_the_level_is_the_same_before_and_after_a_fold() -> None:
    folded = FoldedLevel(50, TODAY - timedelta(days=6))
    sums = {TODAY - timedelta(days=n): -(n + 1) for n in range(6)}
    before = folded.level + sum(d for day, d in sums.items() if day > folded.as_of)
    settled = fold(folded, sums, settled_until(TODAY))
    after = settled.level + sum(d for day, d in sums.items() if day > settled.as_of)
    assert before == after


def test_a_restock_is_keyed_by_its_key_and_bounded() -> None:
    now = datetime(2026, 11, 29, 18, 0, tzinfo=UTC)
    movement = restock_movement(Branch.B, "p1", "delivery-7", 24, now)
    assert (movement.movement_id, movement.delta) == ("restock:delivery-7", 24)
    # 18:00 UTC is 00:30 the next day at the stores (UTC+6:30).
    assert movement.day == store_day(now) == date(2026, 11, 30)
    for quantity in (0, -1, 100_001):
        with pytest.raises(RestockRefused):
            restock_movement(Branch.B, "p1", "k", quantity, now)


def _row(**values: object) -> SimpleNamespace:
    header = {
        "branch": "A",
        "created_at": datetime(2026, 11, 29, 10, 0),
        "status": "open",
        "invoice_id": None,
        "checkout_key": None,
        "request_hash": None,
        "response_status": None,
        "response_body": None,
        "product_id": None,
        "quantity": None,
    }
    return SimpleNamespace(**{**header, **values})


def test_a_cart_partition_reads_back_as_its_lines_summed() -> None:
    rows = [
        _row(product_id="p1", quantity=2),
        _row(product_id="p1", quantity=3),
        _row(product_id="p2", quantity=1),
    ]
    cart = cart_from_rows("c1", rows)
    assert cart is not None
    assert dict(cart.items) == {"p1": 5, "p2": 1}
    assert cart.status is CartStatus.OPEN
    assert cart.created_at.tzinfo is UTC
    assert cart.checkout is None


def test_an_empty_or_closed_cart_partition() -> None:
    assert cart_from_rows("c1", []) is None
    closed = cart_from_rows(
        "c1",
        [
            _row(
                status="checked_out",
                invoice_id="inv",
                checkout_key="k",
                request_hash="h",
                response_status=201,
                response_body="{}",
            )
        ],
    )
    assert closed is not None
    assert dict(closed.items) == {}
    assert closed.checkout is not None
    assert (closed.checkout.key, closed.invoice_id) == ("k", "inv")
