"""The Grafana dashboard's panels and their queries as Prometheus answers them: what the
unit test checks as PromQL and the lab test asks the lab's Prometheus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DASHBOARD = Path(__file__).resolve().parents[1] / "dashboards" / "checkout-platform.json"


def panels() -> list[dict[str, Any]]:
    """The dashboard's panels, rows left out."""
    return [p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] != "row"]


def queries() -> dict[str, str]:
    """Each panel's query by title, with Grafana's variables as a user with every region
    sees them."""
    return {
        p["title"]: t["expr"].replace("$region", ".*").replace("$__rate_interval", "1m")
        for p in panels()
        for t in p["targets"]
    }
