from __future__ import annotations

import pytest

from loadtest.till import RetryPolicy


def test_the_till_backs_off_doubling_up_to_a_cap() -> None:
    policy = RetryPolicy(first_s=0.5, max_s=5.0)
    assert [policy.wait_s(attempt, 0.0) for attempt in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_the_till_waits_at_least_the_apis_retry_after_but_not_for_ever() -> None:
    policy = RetryPolicy(first_s=0.5, max_s=5.0)
    assert policy.wait_s(1, 3.0) == 3.0
    assert policy.wait_s(1, 600.0) == 5.0
    assert policy.wait_s(1, -1.0) == 0.5


def test_the_till_outlasts_a_30_s_outage() -> None:
    """The chaos scenario (g) stops the gateway for 30 s: retries must span it."""
    policy = RetryPolicy()
    attempt, elapsed = 1, 0.0
    while (wait := policy.next_wait_s(attempt, elapsed, retry_after_s=1.0)) is not None:
        elapsed += wait
        attempt += 1
    assert elapsed > 30.0
    assert elapsed <= policy.deadline_s


@pytest.mark.parametrize(
    ("attempt", "elapsed_s", "expected"),
    [
        (1, 0.0, 0.5),
        (5, 54.0, 5.0),
        (5, 55.5, None),  # the deadline would pass during the wait
        (20, 1.0, None),  # the count bound, whatever the time
    ],
)
def test_the_till_gives_up_at_its_deadline_or_its_count(attempt: int, elapsed_s: float, expected: float | None) -> None:
    policy = RetryPolicy(deadline_s=60.0, attempts=20)
    assert policy.next_wait_s(attempt, elapsed_s, retry_after_s=0.0) == expected
