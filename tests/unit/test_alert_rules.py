"""Alert rules are valid and behave as their unit tests say (promtool)."""

from __future__ import annotations

import subprocess

import yaml

from tests.conftest import ROOT

RULES = ROOT / "roles" / "prometheus" / "files"


def test_rules_are_valid(promtool: str) -> None:
    result = subprocess.run([promtool, "check", "rules", *RULES.glob("rules/*.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass(promtool: str) -> None:
    result = subprocess.run(
        [promtool, "test", "rules", *RULES.glob("tests/*.yml")], capture_output=True, text=True, cwd=RULES / "tests"
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _rules() -> list[dict]:
    return [rule for path in sorted(RULES.glob("rules/*.yml")) for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"] if "alert" in rule]  # fmt: skip


def test_every_alert_has_a_runbook() -> None:
    """runbook_url is docs/runbooks/<AlertName>.md, and that runbook exists; no runbook without its alert."""
    alerts = {rule["alert"]: rule["annotations"].get("runbook_url") for rule in _rules()}
    wrong = {name: url for name, url in alerts.items() if url != f"docs/runbooks/{name}.md"}
    assert not wrong, f"runbook_url must be docs/runbooks/<AlertName>.md: {wrong}"
    missing = sorted(name for name in alerts if not (ROOT / "docs" / "runbooks" / f"{name}.md").is_file())
    assert not missing, f"no runbook in docs/runbooks/ for {missing}"
    orphans = sorted(p.stem for p in (ROOT / "docs" / "runbooks").glob("*.md") if p.stem not in {*alerts, "README"})
    assert not orphans, f"runbooks without an alert: {orphans}"


def test_every_alert_has_a_unit_test() -> None:
    tested = {
        case["alertname"]
        for path in RULES.glob("tests/*.yml")
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    untested = sorted({rule["alert"] for rule in _rules()} - tested)
    assert not untested, f"alerts no promtool test sees firing: {untested}"
