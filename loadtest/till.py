"""How a till retries a checkout the API asked it to send again (503 or 504): with the same
Idempotency-Key, backing off, until a deadline. Free of Locust, so it is unit-tested alone.

A real till does not give up on a paying shopper after a few seconds: it keeps the payment
screen up and resends, as the key makes safe, for about as long as a shopper waits at a
till. So a 30 s acquirer outage costs the shopper a wait, not the sale.
"""

from __future__ import annotations

from dataclasses import dataclass

# About as long as a shopper waits at a payment screen before the cashier gives up.
CHECKOUT_DEADLINE_S = 60.0
# A second bound, on the count: a misbehaving API answering 503 at once cannot make a till
# send hundreds of requests within the deadline.
CHECKOUT_ATTEMPTS = 20
# Doubling waits, so that retries do not add to an overload they may have met.
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 5.0


@dataclass(frozen=True)
class RetryPolicy:
    deadline_s: float = CHECKOUT_DEADLINE_S
    attempts: int = CHECKOUT_ATTEMPTS
    first_s: float = BACKOFF_FIRST_S
    max_s: float = BACKOFF_MAX_S

    def wait_s(self, attempt: int, retry_after_s: float) -> float:
        """Seconds before attempt `attempt + 1`: doubling from `first_s`, capped at `max_s`,
        and never sooner than the API's Retry-After (itself capped at `max_s`)."""
        backoff = min(self.max_s, self.first_s * 2 ** (attempt - 1))
        return max(backoff, min(max(retry_after_s, 0.0), self.max_s))

    def next_wait_s(self, attempt: int, elapsed_s: float, retry_after_s: float) -> float | None:
        """The wait before another attempt after attempt `attempt` (1-based) failed with a
        retryable answer `elapsed_s` after the first left, or None when the till gives up."""
        if attempt >= self.attempts:
            return None
        wait = self.wait_s(attempt, retry_after_s)
        return None if elapsed_s + wait > self.deadline_s else wait
