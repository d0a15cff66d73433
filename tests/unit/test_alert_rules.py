"""Alert rules are valid and behave as their unit tests say (promtool)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import ROOT

RULES = ROOT / "roles" / "prometheus" / "files"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: ./lab up installs it (Debian package prometheus)")
    return path


def test_rules_are_valid(promtool: str) -> None:
    result = subprocess.run([promtool, "check", "rules", *RULES.glob("rules/*.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass(promtool: str) -> None:
    result = subprocess.run(
        [promtool, "test", "rules", *RULES.glob("tests/*.yml")], capture_output=True, text=True, cwd=RULES / "tests"
    )
    assert result.returncode == 0, result.stdout + result.stderr
