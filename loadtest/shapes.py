"""Load shapes in checkout operations per second, whatever the number of users (the
users a rate needs: loadtest.pacing, from `--ops-per-user` and `--ramp-s`).

The locustfile binds one of these (by the CHECKOUT_SHAPE environment variable); with
none bound, Locust's own user count and spawn rate apply (web UI or -u/-r).
"""

from __future__ import annotations

import os
from argparse import Namespace

from locust import LoadTestShape

from loadtest.pacing import users_for


class _RateShape(LoadTestShape):
    abstract = True

    def _options(self) -> Namespace:
        assert self.runner is not None
        options = self.runner.environment.parsed_options
        assert options is not None, "run through the locust command line"
        return options

    def _users(self, rate: float) -> tuple[int, float]:
        options = self._options()
        return users_for(rate, options.ops_per_user, options.ramp_s)


class SteadyShape(_RateShape):
    """`--checkout-rate` ops/s for `--hold-s` seconds after the ramp, then stop; earlier
    if `--stop-file` names a file that exists (how a fault run ends its load on cue).

    Statistics restart when the ramp ends, so the report covers the plateau only.
    """

    _reset = False

    def tick(self) -> tuple[int, float] | None:
        options = self._options()
        run_time = self.get_run_time()
        if run_time >= options.ramp_s and not self._reset:
            assert self.runner is not None
            self.runner.stats.reset_all()
            self._reset = True
        if run_time >= options.ramp_s + options.hold_s:
            return None
        if options.stop_file and os.path.exists(options.stop_file):
            return None
        return self._users(options.checkout_rate)


class StepShape(_RateShape):
    """Double the rate every `--step-s` seconds from `--checkout-rate` up to `--max-rate`."""

    def tick(self) -> tuple[int, float] | None:
        options = self._options()
        step = int(self.get_run_time() // options.step_s)
        rate = options.checkout_rate * 2**step
        if rate > options.max_rate:
            return None
        return self._users(rate)


class SpikeShape(_RateShape):
    """`--checkout-rate` for a minute, four times that for 30 s, then back for a minute."""

    def tick(self) -> tuple[int, float] | None:
        options = self._options()
        run_time = self.get_run_time()
        if run_time >= 150:
            return None
        factor = 4 if 60 <= run_time < 90 else 1
        return self._users(options.checkout_rate * factor)


SHAPES: dict[str, type[LoadTestShape]] = {
    "steady": SteadyShape,
    "step": StepShape,
    "spike": SpikeShape,
}


def by_name(name: str) -> type[LoadTestShape]:
    try:
        return SHAPES[name]
    except KeyError:
        raise SystemExit(f"CHECKOUT_SHAPE={name!r} is not a shape; use one of {', '.join(SHAPES)}") from None
