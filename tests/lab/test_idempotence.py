"""A second site.yml run on the deployed lab changes nothing and restarts nothing."""

from __future__ import annotations

import re

import pytest

from tests.conftest import run

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.usefixtures("lab_is_up")]


def test_second_site_run_reports_no_change() -> None:
    result = run(["ansible-playbook", "site.yml"], timeout=1800)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    recap = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", output, flags=re.MULTILINE)
    assert recap, output[-3000:]
    changed = {host: int(n) for host, n in recap if n != "0"}
    assert not changed, f"hosts with changes on a second run: {changed}\n" + "\n".join(_changed_tasks(output))


def _changed_tasks(output: str) -> list[str]:
    """Each 'changed' result with the task that produced it."""
    lines, task = [], ""
    for line in output.splitlines():
        if line.startswith("TASK ["):
            task = line.split("]")[0] + "]"
        elif line.startswith("changed:"):
            lines.append(f"{task} {line}")
    return lines
