"""The fault runs' own logic: scenarios from the inventory, the ops log, the figures."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from loadtest import chaos, probe
from loadtest.chaos_scenarios import Op, parse_ops, recovery_s, scenarios, window
from loadtest.targets import from_inventory

REPO = Path(__file__).resolve().parents[2]
LAB = from_inventory(REPO / "inventories" / "lab")


def _op(t0: float, result: str = "sold", checkout_ms: float = 50.0, length: float = 0.5) -> Op:
    return Op(t0, t0 + length, result, f"k{t0}", f"i{t0}" if result == "sold" else "", checkout_ms)


def test_every_scenario_of_the_issue_is_there_with_hosts_from_the_inventory() -> None:
    known = scenarios(LAB)
    assert sorted({s.letter for s in known.values()}) == list("2abcdefgh")
    one_per_dc = known["cassandra-one-per-dc"].faults[0].extra_vars
    assert one_per_dc == {"chaos_service": "cassandra", "chaos_hosts": "cass-a2,cass-b2,cass-c2"}
    assert known["cassandra-kill"].faults[0].playbook == "kill.yml"
    assert known["dc-down"].faults[0].extra_vars["chaos_hosts"] == "cass-a1,cass-a2"
    assert known["consumer-kill"].faults[0].extra_vars["chaos_hosts"] == "app-a"
    assert known["locust-kill"].kill_load and not known["locust-kill"].faults


def test_every_fault_playbook_exists_and_targets_only_known_services() -> None:
    services = (chaos.PLAYBOOKS / "services.yml").read_text()
    for scenario in scenarios(LAB).values():
        for fault in scenario.faults:
            assert (chaos.PLAYBOOKS / fault.playbook).is_file(), fault.playbook
            service = fault.extra_vars.get("chaos_service")
            assert service is None or f"\n  {service}: " in services, service


def test_the_ops_log_survives_a_torn_last_line_and_keeps_unanswered_keys() -> None:
    lines = [
        json.dumps({"e": "pay", "t": 1.0, "branch": "A", "key": "k1"}),
        json.dumps(
            {
                "e": "op",
                "t0": 0.5,
                "t1": 1.2,
                "branch": "A",
                "result": "sold",
                "step": "",
                "key": "k1",
                "invoice": "i1",
                "checkout_ms": 40.0,
                "op_ms": 700.0,
            }
        ),
        json.dumps({"e": "pay", "t": 2.0, "branch": "B", "key": "k2"}),
        '{"e": "op", "t0": 1.9',
    ]
    ops, keys = parse_ops(lines)
    assert keys == {"k1", "k2"}  # k2's answer never came: the till was killed
    assert [(op.result, op.invoice, op.branch) for op in ops] == [("sold", "i1", "A")]


def test_window_counts_operations_started_in_it() -> None:
    ops = [_op(t) for t in range(10)] + [_op(10.5, "failed"), _op(11, "declined", 900.0), _op(25)]
    during = window(ops, 10, 20)
    assert (during.ops, during.completed, during.failed) == (2, 1, 1)
    assert during.availability == 0.5
    assert during.checkout_p99_ms == 900.0
    assert window(ops, 0, 10).rate == 1.0
    assert window(ops, 30, 40).availability == 1.0  # nothing started: nothing lost


def test_recovery_is_the_first_clean_window_at_the_old_rate() -> None:
    before = [_op(t * 0.5) for t in range(40)]  # 2 ops/s up to t=20
    fault = [_op(20 + t, "failed") for t in range(10)]  # failures up to t=30
    slow = [_op(30 + t) for t in range(10)]  # 1 op/s: not yet back
    back = [_op(40 + t * 0.5) for t in range(60)]  # 2 ops/s again from t=40
    ops = before + fault + slow + back
    # Healed at t=28: the last failure ends at 29.5; the rate is back in windows from ~40.
    recovered = recovery_s(ops, healed_at=28.0, baseline_rate=2.0, run_end=70.0)
    assert recovered is not None and 11.0 <= recovered <= 13.0
    assert recovery_s(before + fault, healed_at=20.0, baseline_rate=2.0, run_end=30.0) is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "no-such"], "unknown scenario no-such"),
        (["--rate", "0"], "--rate must be > 0"),
        (["--before-s", "3"], "--before-s >= 10"),
        (["--write-level", "TWO"], "invalid choice: 'TWO'"),
    ],
)
def test_bad_flags_are_refused_before_anything_runs(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        chaos.main(["--inventory", str(REPO / "inventories" / "lab"), *args])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_list_names_every_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert chaos.main(["--inventory", str(REPO / "inventories" / "lab"), "--list"]) == 0
    assert "(h) locust-kill" in capsys.readouterr().out


def test_an_audit_passes_only_when_nothing_is_lost_or_doubled() -> None:
    clean = chaos.Audit(10, 10, 0, 0, 1, 0, 11, 0, 12, 0)
    assert clean.passed
    assert not chaos.Audit(10, 9, 1, 0, 0, 0, 9, 0, 10, 0).passed
    assert not chaos.Audit(10, 10, 0, 0, 0, 0, 9, 1, 10, 0).passed
    assert not chaos.Audit(10, 10, 0, 0, 0, 0, 10, 0, 11, 1).passed


def test_a_scenario_the_platform_never_recovers_from_fails_with_a_clean_audit() -> None:
    clean = chaos.Audit(10, 10, 0, 0, 0, 0, 10, 0, 10, 0)
    never = chaos.Outcome("region-cut", "c", "", 5, 5.0, 40, 30, 0.25, 0.1, 9000, 60, 30, None, clean)
    assert not never.passed
    assert replace(never, recovery_s=15.0).passed
    assert "never" in chaos.render([never]) and chaos.render([never]).endswith("FAIL")


def test_an_api_that_sells_nothing_by_itself_fails_a_recovered_clean_scenario() -> None:
    clean = chaos.Audit(10, 10, 0, 0, 0, 0, 10, 0, 10, 0)
    healed = chaos.Outcome("region-cut", "c", "", 5, 5.0, 40, 0, 1.0, 1.0, 900, 60, 30, 12.0, clean)
    assert healed.passed
    stuck = replace(healed, not_selling={"A": "HTTP 503 from http://10.89.42.14:8080/carts/x/checkout"})
    assert not stuck.passed
    assert chaos.render([stuck]).endswith("FAIL (no sale by the API of A)")


def test_the_probe_retries_each_api_until_it_sells_or_time_is_up() -> None:
    now = [0.0]
    answers = {"A": ["HTTP 503", None], "B": [None], "C": ["HTTP 503"] * 100}
    asked: list[str] = []

    def sell_one(api: str, branch: str) -> str | None:
        asked.append(branch)
        return answers[branch].pop(0)

    def pause(seconds: float) -> None:
        now[0] += seconds

    stuck = probe.apis_not_selling(
        {"A": "a", "B": "b", "C": "c"}, within_s=5, sell_one=sell_one, clock=lambda: now[0], pause=pause
    )
    assert stuck == {"C": "HTTP 503"}
    assert asked[:5] == ["A", "B", "C", "A", "C"]  # a sold API is not asked again
    assert now[0] >= 5


def test_the_settlement_voids_only_when_a_charge_has_no_sale(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ledger = {"k1", "k2", "k3"}
    played: list[dict[str, str]] = []

    def reconcile(inventory: Path, playbook: Path, extra_vars: dict[str, str], log: Path) -> None:
        assert playbook == chaos.RECONCILE
        played.append(extra_vars)
        ledger.discard("k3")  # its sale was never stored

    monkeypatch.setattr(chaos, "approved_keys", lambda gateway, keys: set(ledger) & set(keys))
    monkeypatch.setattr(chaos, "play", reconcile)
    stored = {chaos.invoice_id_for("k1"), chaos.invoice_id_for("k2")}
    targets = from_inventory(REPO / "inventories" / "lab")
    keys = {"k1", "k2", "k3", "k4"}
    assert chaos.settle(targets, keys, stored | {chaos.invoice_id_for("k3")}, tmp_path, tmp_path / "log") == (
        {"k1", "k2", "k3"}, {"k1", "k2", "k3"}
    )  # fmt: skip
    assert played == []
    assert chaos.settle(targets, keys, stored, tmp_path, tmp_path / "log") == ({"k1", "k2", "k3"}, {"k1", "k2"})
    assert played == [{"checkout_reconcile_older_than_min": "0", "checkout_reconcile_since_h": "2"}]


def test_the_days_file_keeps_the_latest_run_of_every_scenario(tmp_path: Path) -> None:
    def outcome(name: str, letter: str, ops: int) -> chaos.Outcome:
        audit = chaos.Audit(ops, ops, 0, 0, 0, 0, ops, 0, ops, 0)
        return chaos.Outcome(name, letter, "", 10, 9.5, ops, 0, 1.0, 1.0, 100, 60, 30, 5, audit)

    order = ["cassandra-kill", "kafka-leader", "gateway-down"]
    chaos.save([outcome("cassandra-kill", "a", 10), outcome("kafka-leader", "d", 20)], tmp_path, "first", order)
    saved = chaos.save(
        [outcome("gateway-down", "g", 5), outcome("kafka-leader", "d", 30), outcome("cassandra-kill@ALL", "a", 7)],
        tmp_path,
        "second",
        order,
    )
    record = json.loads(saved.with_suffix(".json").read_text())
    assert record["commands"] == ["first", "second"]
    assert [(o["scenario"], o["fault_ops"]) for o in record["outcomes"]] == [
        ("cassandra-kill", 10), ("cassandra-kill@ALL", 7), ("kafka-leader", 30), ("gateway-down", 5)
    ]  # fmt: skip
    assert "(d) kafka-leader" in saved.read_text()
