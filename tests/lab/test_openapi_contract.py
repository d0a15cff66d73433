"""The checkout API keeps its own OpenAPI contract: schemathesis, every check, stateful
sequences included, against a deployed API node (bounded in examples and time)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import address, group_hosts, run

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("lab_is_up")]

API = f"http://{address(group_hosts('app')[0])}:8080"
# Enough for every operation, its coverage cases and a few stateful chains; the run stops
# by itself after MAX_TIME_S whatever it found.
MAX_EXAMPLES = 15
CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_TIME_S = 100


def test_the_api_breaks_no_part_of_its_spec(tmp_path: Path) -> None:
    st = shutil.which("st")
    assert st, "schemathesis (st) is not installed: it is pinned in requirements.txt"
    result = run(
        [
            st, "--config-file", str(CONFIG), "run", f"{API}/openapi.json",
            "--checks", "all",
            "--max-examples", str(MAX_EXAMPLES),
            "--max-time", str(MAX_TIME_S),
            # One worker: CPython 3.11.7 keeps the AST constructor's recursion depth per
            # interpreter, not per thread, so two workers parsing a lambda's source at once
            # (hypothesis describing schemathesis' filters) abort with "AST constructor
            # recursion depth mismatch", a SystemError in the tool, not a finding.
            "--workers", "1",
            "--request-timeout", "10",
            "--report", "junit", "--report-dir", str(tmp_path),
        ],
        timeout=MAX_TIME_S + 120,
    )  # fmt: skip
    summary = result.stdout[-4000:]
    assert result.returncode == 0, f"schemathesis found failures:\n{summary}\n{result.stderr[-2000:]}"
    # Every operation of the spec was exercised, not skipped.
    selected = re.search(r"Selected: (\d+)/(\d+)", result.stdout)
    tested = re.search(r"Tested: (\d+)", result.stdout)
    assert selected and tested, summary
    assert selected.group(1) == selected.group(2) == tested.group(1), summary
