"""Every role keeps the house contract: defaults match argument specs, main only dispatches,
modules by their full names, task names are sentences."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, run

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


# Keys an option of meta/argument_specs.yml may have. Anything else is a typo, or a
# description split at a comma by flow style ({description: a, b} makes a key `b`).
SPEC_KEYS = {"type", "elements", "choices", "required", "default", "description", "options", "aliases", "no_log"}


def _spec_problems(options: dict, path: str):
    for name, spec in options.items():
        if set(spec) - SPEC_KEYS:
            yield f"{path}.{name}: unexpected keys {sorted(set(spec) - SPEC_KEYS)}"
        description = spec.get("description")
        paragraphs = description if isinstance(description, list) else [description]
        if not paragraphs or not all(isinstance(p, str) and p.strip() for p in paragraphs):
            yield f"{path}.{name}: description {description!r} is not text"
        yield from _spec_problems(spec.get("options", {}), f"{path}.{name}")


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_argument_specs_describe_every_option(role: Path) -> None:
    entry_points = _load(role / "meta" / "argument_specs.yml")["argument_specs"]
    problems = [
        problem
        for entry_point, spec in entry_points.items()
        for problem in _spec_problems(spec.get("options", {}), f"{role.name}.{entry_point}")
    ]
    assert not problems, problems


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_main_tags_each_phase_with_the_role_name(role: Path) -> None:
    for task in _tasks(role / "tasks" / "main.yml"):
        tags = task.get("tags", [])
        assert any(tag.startswith(f"{role.name}_") for tag in tags), f"{role.name}: untagged phase {task}"


CACHE_DIR_DEFAULT = "{{ lookup('controller_cache_dir') }}"


def test_every_role_caches_artifacts_in_the_one_controller_cache_dir() -> None:
    defaults = {
        role.name: yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
        for role in ROLES
        if (role / "defaults" / "main.yml").is_file()
    }
    cache_vars = {
        f"{role}.{name}": value
        for role, values in defaults.items()
        for name, value in values.items()
        if name.endswith("cache_dir")
    }
    assert len(cache_vars) >= 6, cache_vars
    assert set(cache_vars.values()) == {CACHE_DIR_DEFAULT}, cache_vars
    shown = run(["ansible", "localhost", "-m", "ansible.builtin.debug", "-a", f"msg={CACHE_DIR_DEFAULT}"], check=True)
    assert f'"{Path.home() / ".cache" / "checkout-platform"}"' in shown.stdout, shown.stdout
