"""Locust against the lab: the web UI, driven through its own web API, in distributed
mode (a master and two worker processes on the controller), with the lab's hosts filled in."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from loadtest.pacing import users_for
from loadtest.run import CHECKOUT_NAME
from loadtest.slo import Slo
from loadtest.targets import REPO, from_inventory
from loadtest.verify import stored_sales

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("lab_is_up")]

PORT = 18089
WEB = f"http://127.0.0.1:{PORT}"
MIN_CHECKOUTS = 30


def _get(path: str) -> Any:
    with urllib.request.urlopen(f"{WEB}{path}", timeout=10) as answer:
        body = answer.read().decode()
    return json.loads(body) if path.startswith("/stats") else body


def _post(path: str, form: dict[str, Any]) -> Any:
    data = urllib.parse.urlencode(form).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{WEB}{path}", data=data), timeout=10) as answer:
        return json.load(answer)


@pytest.fixture(scope="module")
def web_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    acked = tmp_path_factory.mktemp("acked")
    log = (tmp_path_factory.mktemp("log") / "locust.log").open("w")
    env = {k: v for k, v in os.environ.items() if k != "CHECKOUT_SHAPE"}
    process = subprocess.Popen(
        [sys.executable, "-m", "loadtest.web", "--web-host", "127.0.0.1", "--web-port", str(PORT),
         "--processes", "2", "--acked-dir", str(acked)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _get("/stats/requests")["worker_count"] == 2:
                    break
            except OSError:
                pass
            assert process.poll() is None, f"locust exited with {process.returncode}"
            assert time.monotonic() < deadline, "the web UI did not come up with 2 workers within 60 s"
            time.sleep(1)
        yield acked
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        log.close()


def test_the_page_offers_the_lab_api_as_host(web_ui: Path) -> None:
    page = _get("/")
    assert from_inventory().any_api() in page
    # The form starts with the SLO's load: the users that offer its rate, and their spawn rate.
    users, spawn_rate = users_for(Slo.rate)
    assert f'"num_users": {users}' in page, page[-2000:]
    assert f'"spawn_rate": {spawn_rate}' in page, page[-2000:]


def test_a_short_run_through_the_web_api_reports_checkouts(web_ui: Path) -> None:
    targets = from_inventory()
    started_at = datetime.now(UTC)
    started = _post("/swarm", {"user_count": 6, "spawn_rate": 6, "host": targets.any_api()})
    assert started["success"], started
    # Wait for a count of checkouts, not for a time: how fast they come depends on how busy
    # the host is (a throughput goal belongs to the benchmark, not to this test).
    deadline = time.monotonic() + 180
    while True:
        time.sleep(2)
        stats = _get("/stats/requests")
        done = sum(e["num_requests"] for e in stats["stats"] if e["name"] == CHECKOUT_NAME)
        if done >= MIN_CHECKOUTS or time.monotonic() > deadline:
            break
    assert stats["state"] in ("running", "spawning"), stats["state"]
    assert stats["user_count"] == 6
    assert stats["worker_count"] == 2
    by_name = {entry["name"]: entry for entry in stats["stats"]}
    assert {"POST /carts", "POST /carts/{id}/items", CHECKOUT_NAME} <= by_name.keys(), sorted(by_name)
    checkout = by_name[CHECKOUT_NAME]
    assert checkout["num_requests"] >= MIN_CHECKOUTS, checkout
    assert sum(entry["num_failures"] for entry in stats["stats"]) == 0, stats.get("errors")
    assert _post("/stop", {})["success"]
    deadline = time.monotonic() + 60
    while _get("/stats/requests")["state"] != "stopped":
        assert time.monotonic() < deadline, "the run did not stop within 60 s"
        time.sleep(1)
    # Each worker writes the invoices its tills saw acknowledged when it stops, which may
    # be just after the master reports "stopped". (Not compared with the master's request
    # count: a worker's last stats report can reach the master after "stopped", seen as
    # 45 acknowledged against 39 counted.)
    deadline = time.monotonic() + 15
    while len(files := sorted(web_ui.glob("acked-*.txt"))) < 2 and time.monotonic() < deadline:
        time.sleep(1)
    assert len(files) == 2, f"acknowledged-invoice files of the 2 workers: {files}"
    acked = [line for path in files for line in path.read_text().split()]
    assert acked, "the workers saw no checkout acknowledged"
    assert len(set(acked)) == len(acked), "an invoice acknowledged twice"
    # Stored by the consumers a moment after the API answered: give them a little while.
    deadline = time.monotonic() + 30
    while (stored := stored_sales(targets, acked, started_at, datetime.now(UTC))).missing:
        if time.monotonic() > deadline:
            break
        time.sleep(2)
    assert (stored.found, stored.missing, stored.duplicated) == (len(acked), [], []), stored
