"""The producer bench's controller side: its flags, and the brokers' CPU per record."""

from __future__ import annotations

import pytest

from loadtest import producer_bench


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lingers", "0,x"], "comma-separated numbers"),
        (["--lingers", "-1"], "lingers must be 0 or more"),
        (["--rates", "0"], "rates and --seconds positive"),
        (["--seconds", "0"], "rates and --seconds positive"),
    ],
)
def test_bad_flags_stop_before_any_run(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        producer_bench.parse_args(argv)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def test_flags_become_lists_of_numbers() -> None:
    args = producer_bench.parse_args(["--lingers", "0,5", "--rates", "20,100"])
    assert (args.lingers, args.rates) == ([0, 5], [20.0, 100.0])


def test_broker_cpu_per_record_is_net_of_the_idle_brokers() -> None:
    figures = {"records": 400, "broker_cores": 0.25, "broker_window_s": 20.0}
    # (0.25 - 0.05) cores x 20 s = 4 CPU seconds over 400 records.
    assert producer_bench.broker_cpu_ms_per_record(figures, idle_cores=0.05) == 10.0
    assert producer_bench.broker_cpu_ms_per_record({**figures, "broker_cores": 0.01}, idle_cores=0.05) == 0.0
    assert producer_bench.broker_cpu_ms_per_record({**figures, "records": 0}, idle_cores=0.05) is None


def test_the_table_has_a_row_per_run() -> None:
    rows = [{"linger_ms": 0, "mode": "direct", "records": 10}, {"linger_ms": 5, "mode": "thread", "records": 10}]
    lines = producer_bench.table(rows).splitlines()
    assert len(lines) == 4 and lines[2].startswith("| 0 | direct |")
