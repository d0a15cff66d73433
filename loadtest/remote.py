"""Commands on inventory hosts, through Ansible, so the load tools work against any inventory."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from loadtest.targets import REPO


class PlaybookError(RuntimeError):
    pass


def play(inventory: Path, playbook: Path, extra_vars: Mapping[str, str], log: Path) -> None:
    """ansible-playbook, its output appended to `log`; PlaybookError when it fails."""
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(playbook)]
    for name, value in extra_vars.items():
        command += ["-e", f"{name}={value}"]
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        done = subprocess.run(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise PlaybookError(f"{playbook.name} failed (exit {done.returncode}); see {log}")


def module(inventory: Path, hosts: str, name: str, args: str, *, become: bool = False) -> str:
    """Run one Ansible module on `hosts` (a pattern); its output, or an error with it."""
    ansible = shutil.which("ansible", path=str(Path(sys.executable).parent)) or "ansible"
    done = subprocess.run(
        [ansible, "-i", str(inventory), hosts, "-m", name, "-a", args, *(["--become"] if become else [])],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{name} {args.split()[0]} on {hosts} failed:\n{done.stdout[-1500:]}{done.stderr[-500:]}")
    return done.stdout


def on_host(inventory: Path, host: str, command: str) -> str:
    """Run a command on an inventory host; its stdout, or an error."""
    return module(inventory, host, "ansible.builtin.command", command)
