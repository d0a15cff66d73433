"""Run Locust headless with a shape and collect what it wrote: stats, report, acked ids."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import psutil

from loadtest.pacing import OPS_PER_USER, RAMP_S
from loadtest.targets import REPO, Targets

LOCUSTFILE = REPO / "loadtest" / "locustfile.py"
RESULTS = REPO / ".lab" / "loadtest"
CHECKOUT_NAME = "POST /carts/{id}/checkout"
# The locustfile's pseudo-request per completed checkout operation (sold or declined):
# its count is the operations, its time the whole basket's, retries included.
OPERATION_NAME = "checkout operation"
PROGRESS_EVERY_S = 30.0
# How long a stopping till may take to finish the checkout it is in (Locust --stop-timeout).
STOP_TIMEOUT_S = 60


@dataclass(frozen=True)
class EndpointStats:
    name: str
    requests: int
    failures: int
    rate: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


@dataclass(frozen=True)
class RunResult:
    directory: Path
    started: datetime
    finished: datetime
    exit_code: int
    endpoints: dict[str, EndpointStats]
    acked: list[str]

    @property
    def checkout(self) -> EndpointStats | None:
        return self.endpoints.get(CHECKOUT_NAME)

    @property
    def operations(self) -> EndpointStats | None:
        return self.endpoints.get(OPERATION_NAME)

    @property
    def total(self) -> EndpointStats | None:
        return http_total(self.endpoints)


def http_total(endpoints: dict[str, EndpointStats]) -> EndpointStats | None:
    """Every HTTP request (Locust's Aggregated row without the operation entries)."""
    aggregated = endpoints.get("Aggregated")
    ops = endpoints.get(OPERATION_NAME)
    if aggregated is None or ops is None:
        return aggregated
    return replace(
        aggregated,
        requests=aggregated.requests - ops.requests,
        failures=aggregated.failures - ops.failures,
        rate=aggregated.rate - ops.rate,
    )


def read_stats(path: Path) -> dict[str, EndpointStats]:
    """The `<prefix>_stats.csv` Locust writes: one row per request name plus Aggregated."""
    endpoints: dict[str, EndpointStats] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):

            def number(column: str, row: dict[str, str] = row) -> float:
                value = row.get(column, "")
                return float(value) if value not in ("", "N/A") else 0.0

            endpoints[row["Name"]] = EndpointStats(
                name=row["Name"],
                requests=int(number("Request Count")),
                failures=int(number("Failure Count")),
                rate=number("Requests/s"),
                p50_ms=number("50%"),
                p95_ms=number("95%"),
                p99_ms=number("99%"),
                max_ms=number("Max Response Time"),
            )
    return endpoints


def read_acked(directory: Path) -> list[str]:
    return [line.strip() for path in sorted(directory.glob("acked-*.txt")) for line in path.open() if line.strip()]


@dataclass(frozen=True)
class Load:
    """What Locust offers: `rate` checkout operations/s for `hold_s` s after a `ramp_s` ramp."""

    rate: float
    hold_s: float
    ramp_s: float = RAMP_S
    ops_per_user: float = OPS_PER_USER
    processes: int = 1


def headless_command(
    targets: Targets,
    directory: Path,
    load: Load,
    *,
    prefix: str = "locust",
    ops_log: Path | None = None,
    stop_file: Path | None = None,
) -> list[str]:
    """The headless steady-shape Locust run of the SLO, the bench and the fault runs."""
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "--host", targets.any_api(), "--branch-hosts", targets.branch_hosts_arg(),
        "--checkout-rate", str(load.rate), "--hold-s", str(load.hold_s), "--ramp-s", str(load.ramp_s),
        "--ops-per-user", str(load.ops_per_user),
        "--csv", str(directory / prefix), "--html", str(directory / f"{prefix.replace('locust', 'report')}.html"),
        "--acked-dir", str(directory / "acked"),
        # Let every till finish the checkout it is in: a request cut off after the API
        # stored the sale would be a sale the run never saw acknowledged.
        "--stop-timeout", str(STOP_TIMEOUT_S), "--only-summary", "--loglevel", "WARNING",
    ]  # fmt: skip
    if ops_log is not None:
        command += ["--ops-log", str(ops_log)]
    if stop_file is not None:
        command += ["--stop-file", str(stop_file)]
    if load.processes > 1:
        command += ["--processes", str(load.processes)]
    return command


def locust_environment() -> dict[str, str]:
    return {**os.environ, "CHECKOUT_SHAPE": "steady", "PYTHONPATH": str(REPO)}


def progress_line(stats_file: Path, started: datetime, load: Load) -> str:
    """Where a running Locust is: Locust rewrites its stats file every few seconds, so a
    5-minute run shows it is alive and how it goes, not only its end."""
    elapsed = (datetime.now(UTC) - started).total_seconds()
    head = f"  {elapsed:4.0f} s of {load.ramp_s + load.hold_s:.0f}"
    try:
        endpoints = read_stats(stats_file)
    except (OSError, KeyError, ValueError):
        return f"{head}: no statistics yet"
    ops, total = endpoints.get(OPERATION_NAME), http_total(endpoints)
    if ops is None or total is None:
        return f"{head}: no checkout operation finished yet"
    return (
        f"{head}: {ops.requests} checkout ops ({ops.rate:.1f}/s on average), "
        f"operation p95 {ops.p95_ms:.0f} ms, {total.failures} failed requests"
    )


def wait_for_workers(marker: str, deadline_s: float = STOP_TIMEOUT_S + 15) -> None:
    """Wait until no process with `marker` in its command line runs. With --processes the
    master can exit before its workers have finished their in-flight checkouts and written
    their acked files (seen: 14-19 s later after a stall); reading them early would miss
    acknowledged sales."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        running = (p for p in psutil.process_iter(["cmdline"]) if p.pid != os.getpid())
        if not any(marker in " ".join(p.info["cmdline"] or ()) for p in running):
            return
        time.sleep(0.2)


def run_locust(targets: Targets, load: Load, *, label: str, results: Path = RESULTS) -> RunResult:
    started = datetime.now(UTC)
    directory = results / f"{started:%Y%m%dT%H%M%SZ}-{label}"
    directory.mkdir(parents=True, exist_ok=True)
    command = headless_command(targets, directory, load)
    with (directory / "locust.log").open("w") as log:
        process = subprocess.Popen(command, cwd=REPO, env=locust_environment(), stdout=log, stderr=subprocess.STDOUT)
        while True:
            try:
                exit_code = process.wait(timeout=PROGRESS_EVERY_S)
                break
            except subprocess.TimeoutExpired:
                print(progress_line(directory / "locust_stats.csv", started, load), flush=True)
    wait_for_workers(str(directory / "acked"))
    stats_file = directory / "locust_stats.csv"
    if not stats_file.exists():
        tail = (directory / "locust.log").read_text()[-2000:]
        raise RuntimeError(f"Locust wrote no statistics (exit {exit_code}); end of {directory}/locust.log:\n{tail}")
    return RunResult(
        directory=directory,
        started=started,
        finished=datetime.now(UTC),
        exit_code=exit_code,
        endpoints=read_stats(stats_file),
        acked=read_acked(directory / "acked"),
    )
