"""Start Locust (web UI by default) with the lab's API hosts filled in from the inventory.

    python -m loadtest.web [locust options...]      # e.g. --processes 2, --master, --worker

Every option after the module name goes to Locust unchanged, so the same entry point
serves the web UI, a master, or a worker of the distributed mode.
"""

from __future__ import annotations

import os
import sys

from loadtest.run import LOCUSTFILE
from loadtest.targets import REPO, from_inventory


def main() -> None:
    extra = sys.argv[1:]
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
    if "--worker" not in extra:
        # A worker takes host and options from its master.
        targets = from_inventory()
        command += ["--host", targets.any_api(), "--branch-hosts", targets.branch_hosts_arg()]
    os.chdir(REPO)
    os.environ["PYTHONPATH"] = str(REPO)
    os.execv(sys.executable, command + extra)


if __name__ == "__main__":
    main()
