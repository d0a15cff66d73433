"""Shared helpers: the repository root, the lab inventory, SSH access to lab VMs."""

from __future__ import annotations

import json
import os
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAB_INVENTORY = ROOT / "inventories" / "lab" / "hosts.yml"
PRODUCTION_INVENTORY = ROOT / "inventories" / "production" / "hosts.yml"
LAB_KEY = ROOT / ".lab" / "ssh" / "id_ed25519"


def ansible_env() -> dict[str, str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    return env


def run(cmd: list[str], timeout: int = 1800, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run a command from the repository root with the project's Ansible settings."""
    result = subprocess.run(cmd, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


@cache
def inventory(path: Path = LAB_INVENTORY) -> dict[str, Any]:
    """The inventory as `ansible-inventory --list` resolves it (groups, hostvars)."""
    out = run(["ansible-inventory", "-i", str(path), "--list"], check=True).stdout
    return json.loads(out)


def group_hosts(group: str, path: Path = LAB_INVENTORY) -> list[str]:
    inv = inventory(path)
    hosts = list(inv.get(group, {}).get("hosts", []))
    for child in inv.get(group, {}).get("children", []):
        hosts += [h for h in group_hosts(child, path) if h not in hosts]
    return hosts


def hostvars(host: str, path: Path = LAB_INVENTORY) -> dict[str, Any]:
    return inventory(path)["_meta"]["hostvars"][host]


def address(host: str) -> str:
    return str(hostvars(host)["ansible_host"])


def lab_host(name: str) -> Any:
    """A testinfra host for a lab VM, over SSH with the lab's key."""
    import testinfra

    return testinfra.get_host(
        f"ssh://root@{address(name)}",
        ssh_identity_file=str(LAB_KEY),
        ssh_extra_args="-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
    )


@pytest.fixture(scope="session")
def lab_is_up() -> None:
    """Skip lab tests with a clear reason when the lab is down; fail instead where it must be up."""
    # scripts/run-tests brings the lab up and sets this, so a broken lab cannot pass as skipped.
    give_up = pytest.fail if os.environ.get("CHECKOUT_LAB_REQUIRED") == "1" else pytest.skip
    if not LAB_KEY.exists():
        give_up("the lab is not up: run ./lab up first")
    probe = lab_host(group_hosts("cassandra")[0]).run("true")
    if probe.rc != 0:
        give_up(f"the lab VMs do not answer over SSH ({probe.stderr.strip()}): run ./lab up")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """CI (CI=true) leaves out the tests marked outside_ci: its run has a 60-minute budget."""
    if os.environ.get("CI") != "true":
        return
    kept = [item for item in items if item.get_closest_marker("outside_ci") is None]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept
