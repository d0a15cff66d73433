"""The console pages on the monitoring node hold data: every table cell has a value and every
graph draws lines, in headless Chromium; every panel of the Grafana dashboard answers from
the lab's Prometheus. Screenshots are kept under .lab/console/ to look at."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from typing import Any

import pytest

from loadtest.targets import from_inventory
from tests.dashboard import queries

from .conftest import FIGURES
from .lab import REPO, Inventory, checkout, http, ok

pytestmark = pytest.mark.lab

PAGES = ("index.html", "cassandra.html", "kafka.html")
SCREENSHOTS = REPO / ".lab" / "console"
# Series that exist only once their event happened (a 5xx, a dead letter): an empty
# answer is data here, not a broken panel.
EVENT_ONLY = {"httpErrors", "Dead letters per hour, by region and reason"}
# Flags for a closed network: without them Chromium keeps dialling Google's hosts.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--window-size=1500,2400", "--virtual-time-budget=15000",
)  # fmt: skip
DATA_WITHIN_S = 60.0


class _Panels(HTMLParser):
    """Each graph panel (div.checkout_graph) and whether it drew a line or an error, and
    each table cell (td.checkout_cell) with its text."""

    def __init__(self) -> None:
        super().__init__()
        self.graphs: dict[str, dict[str, bool]] = {}
        self.cells: list[str] = []
        self._graph: str | None = None
        self._graph_depth = 0
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if self._graph is not None:
            self._graph_depth += tag == "div"
            seen = self.graphs[self._graph]
            # Rickshaw draws each series as path.path; axes and strokes are other paths.
            line = tag == "path" and "path" in classes and "L" in (dict(attrs).get("d") or "")
            seen["line"] = seen["line"] or line
            seen["error"] = seen["error"] or "prom_graph_error" in classes
        elif tag == "div" and "checkout_graph" in classes:
            self._graph, self._graph_depth = dict(attrs).get("id") or "?", 1
            self.graphs[self._graph] = {"line": False, "error": False}
        if tag == "td" and "checkout_cell" in classes:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if self._graph is not None and tag == "div":
            self._graph_depth -= 1
            if self._graph_depth == 0:
                self._graph = None
        if tag == "td" and self._cell is not None:
            self.cells.append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def prometheus(lab: Inventory) -> str:
    """The monitoring node's Prometheus, at the port the inventory gives it."""
    url = from_inventory().prometheus
    assert url, "no host in inventory group monitoring: the console lives on it"
    return url


def _chromium(*args: str) -> str:
    binary = shutil.which("chromium")
    assert binary, "chromium is not installed: playbooks/lab_up.yml installs it on the lab host"
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _query(prometheus: str, expr: str) -> list[Any]:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=15) as response:
        answer = json.load(response)
    assert answer["status"] == "success", (expr, answer)
    result: list[Any] = answer["data"]["result"]
    return result


@pytest.fixture(scope="module")
def traffic(lab: Inventory, prometheus: str) -> None:
    """A checkout and a rejected request in every region, then until Prometheus has the
    checkout counters' rates: the panels show this run's traffic, whatever ran before."""
    regions = sorted({lab.region(h) for h in lab.app_hosts()})
    for region in regions:
        api = lab.address(lab.app_host_of(region))
        _, _, reply = checkout(api, lab.branch_of(region))
        ok(reply, 201)
        assert http(api, "POST", "/carts", json_body={"branch": "nowhere"}).status == 422
    # Every region's rate, not just any: a region whose first sale since its API started is
    # this one has its counter in one scrape only, and a rate needs two.
    expr = "count(sum by (region) (rate(checkouts_total{outcome=~'completed|declined'}[1m]) > 0))"
    deadline = time.monotonic() + DATA_WITHIN_S

    def every_region() -> bool:
        found = _query(prometheus, expr)
        return bool(found) and int(float(found[0]["value"][1])) >= len(regions)

    while not every_region() and time.monotonic() < deadline:
        time.sleep(3)


@pytest.mark.usefixtures("traffic")
@pytest.mark.parametrize("page", PAGES)
def test_the_console_page_holds_data(prometheus: str, page: str) -> None:
    url = f"{prometheus}/consoles/{page}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / page.replace(".html", ".png")
    _chromium(f"--screenshot={shot}", url)
    panels = _Panels()
    panels.feed(_chromium("--dump-dom", url))
    assert panels.cells, f"{page}: no table cell rendered"
    empty = [i for i, text in enumerate(panels.cells) if text in ("", "-") or "error" in text.lower()]
    assert not empty, f"{page}: cells without a value at {empty}: {panels.cells}"
    assert panels.graphs, f"{page}: no graph rendered"
    broken = {
        name: seen
        for name, seen in panels.graphs.items()
        if name not in EVENT_ONLY and (seen["error"] or not seen["line"])
    }
    assert not broken, f"{page}: graphs without data: {broken}"
    FIGURES[f"console {page}: cells with a value, graphs drawn"] = (
        f"{len(panels.cells)}, {sum(s['line'] for s in panels.graphs.values())} of {len(panels.graphs)}; {shot}"
    )


@pytest.mark.usefixtures("traffic")
def test_every_dashboard_panel_answers(prometheus: str) -> None:
    exprs = queries()
    assert len(exprs) >= 10, exprs
    empty = [title for title, expr in exprs.items() if title not in EVENT_ONLY and not _query(prometheus, expr)]
    assert not empty, f"dashboard panels with no series: {empty}"
    FIGURES["Grafana dashboard panels answering from the lab"] = f"{len(exprs) - len(empty)} of {len(exprs)}"
