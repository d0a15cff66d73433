"""Versioned CQL templates, and the parameters rendered into them.

These constants are the one place that decides each retention fact; the writers use the
same values in their statements.
"""

SALES_TTL_SECONDS = 7_776_000  # 90 days, for every sale row
CART_TTL_SECONDS = 86_400  # an abandoned cart disappears a day after its last change
IDEMPOTENCY_TTL_SECONDS = 86_400  # how long a client may retry a checkout with its key
# 4-day windows over a 90-day TTL give ~23 SSTable windows (TWCS wants 20-30).
TWCS_WINDOW_DAYS = 4
