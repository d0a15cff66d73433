"""The consistency matrix's verdicts, its choice of nodes to stop and its flags."""

from __future__ import annotations

from typing import Any

import pytest

from loadtest import visibility
from loadtest.consistency_matrix import Cell, nodes_down_for, parse_args, render
from loadtest.targets import Targets


def cell(**changes: Any) -> Cell:
    fields: dict[str, Any] = {
        "state": "healthy", "write": "QUORUM", "read": "QUORUM", "ops": 20, "ok": 20, "stale": 0,
        "write_p50_ms": 2.0, "write_p99_ms": 9.0, "read_p50_ms": 2.0, "read_p99_ms": 8.0,
        "errors": {}, "served": True, "never_stale": True,
    }  # fmt: skip
    return Cell(**{**fields, **changes})


@pytest.mark.parametrize(
    ("changes", "verdict"),
    [
        ({}, "ok"),
        ({"ok": 19}, "ok"),  # one timeout on a busy host
        ({"ok": 15}, "refused 5 of 20 though its replicas are up"),
        ({"stale": 1}, "1 stale reads though write and read always overlap"),
        ({"stale": 7, "never_stale": False}, "ok"),  # stale reads are allowed there, and measured
        ({"served": False, "ok": 0, "errors": {"Unavailable": 20}}, "ok"),
        ({"served": False, "ok": 2}, "served though the arithmetic says it cannot be"),
    ],
)
def test_each_cell_is_judged_against_the_arithmetic(changes: dict[str, Any], verdict: str) -> None:
    assert cell(**changes).verdict == verdict


LAB = Targets(
    api_by_branch={}, cassandra_by_dc={"Y": ["a1", "a2"], "M": ["b1", "b2"], "N": ["c1", "c2"]},
    kafka_bootstrap=[], kafka_hosts=[], prometheus=None, lab_vms=[],
    cassandra_hosts_by_dc={"Y": ["cass-a1", "cass-a2"], "M": ["cass-b1", "cass-b2"], "N": ["cass-c1", "cass-c2"]},
)  # fmt: skip


def test_the_writing_dc_loses_a_node_and_a_middle_dc_goes_whole() -> None:
    assert nodes_down_for(LAB, "healthy") == []
    assert nodes_down_for(LAB, "node-down") == ["cass-a2"]
    assert nodes_down_for(LAB, "dc-down") == ["cass-b1", "cass-b2"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--states", "healthy,split"], "unknown state(s) split"), (["--ops", "0"], "between 1 and 1000")],
)
def test_bad_flags_stop_before_touching_the_cluster(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse_args(argv)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def test_the_table_shows_prediction_and_verdict() -> None:
    lines = render([cell(), cell(write="ALL", served=False, ok=0)]).splitlines()
    assert "served, never stale" in lines[1] and lines[1].endswith("ok")
    assert "refused" in lines[2]


def test_visibility_summary_and_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert visibility.summary([3.0, 1.0, 2.0, 100.0]) == {"count": 4, "p50_ms": 3.0, "p99_ms": 100.0, "max_ms": 100.0}
    with pytest.raises(SystemExit):
        visibility.parse_args(["--writes", "0"])
    assert "between 1 and 10000" in capsys.readouterr().err
