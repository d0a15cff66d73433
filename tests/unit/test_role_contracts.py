"""Every role keeps the house contract: defaults match argument specs, main only dispatches,
modules by their full names, task names are sentences."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

ROLES = sorted(p for p in (ROOT / "roles").iterdir() if p.is_dir())
# Keys of a task that are not its module.
TASK_KEYWORDS = {
    "name",
    "when",
    "loop",
    "loop_control",
    "register",
    "notify",
    "listen",
    "vars",
    "tags",
    "become",
    "become_user",
    "delegate_to",
    "run_once",
    "changed_when",
    "failed_when",
    "until",
    "retries",
    "delay",
    "block",
    "rescue",
    "always",
    "environment",
    "no_log",
    "throttle",
    "check_mode",
    "ignore_errors",
    "delegate_facts",
    "args",
    "async",
    "poll",
    "timeout",
    "any_errors_fatal",
}


def _load(path: Path):
    return yaml.safe_load(path.read_text()) or {}


def _tasks(path: Path):
    for task in _load(path) or []:
        yield task
        for section in ("block", "rescue", "always"):
            yield from task.get(section, [])


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_defaults_match_argument_specs(role: Path) -> None:
    defaults = set(_load(role / "defaults" / "main.yml"))
    specs = _load(role / "meta" / "argument_specs.yml")["argument_specs"]["main"].get("options", {})
    assert defaults == set(specs), (
        f"{role.name}: only in defaults {sorted(defaults - set(specs))}, only in specs {sorted(set(specs) - defaults)}"
    )


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_public_variables_carry_the_role_prefix(role: Path) -> None:
    defaults = _load(role / "defaults" / "main.yml")
    assert all(name.startswith(f"{role.name}_") for name in defaults), sorted(defaults)


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_main_only_dispatches(role: Path) -> None:
    for task in _tasks(role / "tasks" / "main.yml"):
        modules = set(task) - TASK_KEYWORDS
        assert modules <= {"ansible.builtin.import_tasks", "ansible.builtin.include_tasks"}, task


@pytest.mark.parametrize(
    "task_file",
    sorted([*(ROOT / "roles").glob("*/tasks/*.yml"), *(ROOT / "roles").glob("*/handlers/*.yml")]),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_tasks_use_full_module_names_and_sentences(task_file: Path) -> None:
    local_modules = {p.stem for p in (ROOT / "roles").glob("*/library/*.py")}
    for task in _tasks(task_file):
        name = task.get("name", "")
        assert name[:1].isupper() and name.endswith("."), f"task name is not a sentence: {name!r}"
        if "block" in task:
            continue
        modules = set(task) - TASK_KEYWORDS
        assert len(modules) == 1, f"{name}: {modules}"
        module = modules.pop()
        assert "." in module or module in local_modules, f"{name}: use the full name of {module}"
