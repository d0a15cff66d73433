"""The Grafana dashboard and the console pages are well formed, and every query in them is
valid PromQL (promtool checks each as a recording rule). That they hold data is the lab's
test: tests/integration/test_console.py."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.dashboard import panels, queries

CONSOLES = ROOT / "roles" / "prometheus" / "files" / "consoles"
# A graph's query is the third argument of checkout_graph; a table cell's the first of
# region_cell or prom_query_drilldown (printf patterns: %s is a region).
GRAPH = re.compile(r'template "checkout_graph" \(args "\w+" "[^"]*" "([^"]*)"')
CELL = re.compile(r'template "(?:region_cell|prom_query_drilldown)" \(args (?:\(printf )?"([^"]*)"')


def _check_exprs(promtool: str, exprs: list[str], tmp_path: Path) -> None:
    rules = {"groups": [{"name": "queries", "rules": [{"record": f"q:{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_panel_queries_the_chosen_prometheus() -> None:
    every = panels()
    assert len({p["id"] for p in every}) == len(every)
    for panel in every:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert [t["datasource"]["uid"] for t in panel["targets"]] == ["${datasource}"], panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]


def test_dashboard_queries_are_valid_promql(promtool: str, tmp_path: Path) -> None:
    _check_exprs(promtool, list(queries().values()), tmp_path)


@pytest.mark.parametrize("page", sorted(p.name for p in CONSOLES.glob("*.html")))
def test_console_queries_are_valid_promql(promtool: str, tmp_path: Path, page: str) -> None:
    text = (CONSOLES / page).read_text()
    exprs = [e.replace("%s", "Yangon") for e in GRAPH.findall(text) + CELL.findall(text)]
    assert len(GRAPH.findall(text)) >= 3, f"{page}: fewer than 3 graphs"
    _check_exprs(promtool, exprs, tmp_path)
