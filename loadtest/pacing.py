"""How many Locust users offer a checkout rate: one place for the shapes, the SLO run and
the web UI's defaults. Free of Locust itself, whose import patches the process (gevent).

A shopper user paces itself at `ops_per_user` checkouts per second (Locust's
constant_throughput), so a rate R needs ceil(R / ops_per_user) users, spawned over
`ramp_s` seconds so that their checkouts do not all fire in the same instant.
"""

from __future__ import annotations

import math

# A till's pace and how long the users take to start, unless the command line says otherwise.
OPS_PER_USER = 1.0
RAMP_S = 10.0


def users_for(rate: float, ops_per_user: float = OPS_PER_USER, ramp_s: float = RAMP_S) -> tuple[int, float]:
    """(users, spawn rate per second) that offer `rate` checkout operations per second."""
    users = max(1, math.ceil(rate / ops_per_user))
    return users, max(1.0, users / ramp_s)
