"""Start Locust (web UI by default) with the lab's API hosts filled in from the inventory.

    python -m loadtest.web [locust options...]      # e.g. --processes 2, --master, --worker

Every option after the module name goes to Locust unchanged, so the same entry point
serves the web UI, a master, or a worker of the distributed mode. Unless given, the web
UI's user count and spawn rate are the SLO's: the users that offer its checkout rate.
"""

from __future__ import annotations

import os
import sys

from loadtest.pacing import users_for
from loadtest.run import LOCUSTFILE
from loadtest.slo import Slo
from loadtest.targets import REPO, Targets, from_inventory

_USER_FLAGS = ("-u", "--users", "-r", "--spawn-rate")


def locust_command(extra: list[str], targets: Targets | None) -> list[str]:
    """The locust command line for `extra`; `targets` is None for a worker."""
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
    if targets is not None:
        command += ["--host", targets.any_api(), "--branch-hosts", targets.branch_hosts_arg()]
        if not any(arg.split("=")[0] in _USER_FLAGS for arg in extra):
            users, spawn_rate = users_for(Slo.rate)
            command += ["--users", str(users), "--spawn-rate", f"{spawn_rate:g}"]
    return command + extra


def main() -> None:
    extra = sys.argv[1:]
    # A worker takes host and options from its master.
    targets = None if "--worker" in extra else from_inventory()
    os.chdir(REPO)
    os.environ["PYTHONPATH"] = str(REPO)
    command = locust_command(extra, targets)
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
