"""CPU and memory of the lab while a load step runs: the host, each VM, the load generator.

The load generator's CPU is that of the finished child processes: read it after Locust exits.

On the podman lab each VM is a container with its own cgroup, so its CPU time and memory
are read from the cgroup files (v1 or v2). Against real VMs there is no such view from
the controller: the per-VM figures stay empty and only the controller's are reported.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

CGROUP = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class VmUsage:
    cpu_cores: float  # average cores busy over the step
    memory_mb: float  # at the end of the step


@dataclass(frozen=True)
class Usage:
    seconds: float
    host_cpu_cores: float
    host_cpus: int
    host_memory_used_mb: float
    locust_cpu_cores: float
    vms: dict[str, VmUsage] = field(default_factory=dict)

    def by_role(self) -> dict[str, float]:
        """CPU cores per kind of VM (cass, kafka, app, monitor), summed."""
        roles: dict[str, float] = {}
        for name, vm in self.vms.items():
            role = name.split("-")[0]
            roles[role] = roles.get(role, 0.0) + vm.cpu_cores
        return roles


def _cgroup_paths(names: list[str]) -> dict[str, str]:
    if not names or shutil.which("podman") is None:
        return {}
    listed = subprocess.run(
        ["podman", "inspect", "--format", "{{.Name}} {{.State.CgroupPath}}", *names],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return dict(line.split(" ", 1) for line in listed.stdout.splitlines() if " " in line)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _cpu_ns(cgroup: str) -> int | None:
    v1 = _read_int(CGROUP / "cpuacct" / cgroup.lstrip("/") / "cpuacct.usage")
    if v1 is not None:
        return v1
    try:
        stat = (CGROUP / cgroup.lstrip("/") / "cpu.stat").read_text()
    except OSError:
        return None
    usec = next((int(line.split()[1]) for line in stat.splitlines() if line.startswith("usage_usec")), None)
    return None if usec is None else usec * 1000


def _memory_bytes(cgroup: str) -> int | None:
    v1 = _read_int(CGROUP / "memory" / cgroup.lstrip("/") / "memory.usage_in_bytes")
    return v1 if v1 is not None else _read_int(CGROUP / cgroup.lstrip("/") / "memory.current")


def _children_cpu_s() -> float:
    """CPU of the finished child processes (Locust runs as one, with its workers under it)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class UsageMeter:
    def __init__(self, vm_names: list[str]) -> None:
        self._paths = _cgroup_paths(vm_names)

    def __enter__(self) -> UsageMeter:
        self._started = time.monotonic()
        self._host = psutil.cpu_times()
        self._locust = _children_cpu_s()
        self._vms = {name: _cpu_ns(path) for name, path in self._paths.items()}
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def read(self) -> Usage:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        host_now = psutil.cpu_times()
        busy = (sum(host_now) - host_now.idle - getattr(host_now, "iowait", 0.0)) - (
            sum(self._host) - self._host.idle - getattr(self._host, "iowait", 0.0)
        )
        vms: dict[str, VmUsage] = {}
        for name, path in self._paths.items():
            before, after, memory = self._vms.get(name), _cpu_ns(path), _memory_bytes(path)
            if before is not None and after is not None and memory is not None:
                vms[name] = VmUsage((after - before) / 1e9 / elapsed, memory / 2**20)
        return Usage(
            seconds=elapsed,
            host_cpu_cores=busy / elapsed,
            host_cpus=psutil.cpu_count() or 1,
            host_memory_used_mb=(psutil.virtual_memory().total - psutil.virtual_memory().available) / 2**20,
            locust_cpu_cores=(_children_cpu_s() - self._locust) / elapsed,
            vms=vms,
        )
