"""Alerts reach someone: stopping Cassandra on one node makes a firing CassandraNodeDown
for it arrive at the lab's alert receiver (Prometheus -> Alertmanager -> webhook), and
starting it again makes the resolved notification arrive.

Timing, with the lab's settings (scrape and evaluation every 15 s, the rule's `for: 1m`,
Alertmanager group_wait 5 s and group_interval 10 s): firing 65-95 s after the stop,
resolved 5-45 s after the start (the JMX exporter is a Java agent, up as soon as the JVM
is), then the node is waited for until UN. About 2.5 to 3.5 minutes in all.

The node is cass-a2, as in tests/integration/test_node_loss.py: Yangon keeps one of its
two replicas, and the node is started again and waited for whatever happens.
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest

from tests.conftest import address, group_hosts, hostvars
from tests.integration import conftest as integration
from tests.integration.lab import ssh
from tests.integration.test_node_loss import _wait_status

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("lab_is_up")]

NODE = "cass-a2"
PEER = "cass-a1"
ALERT = "CassandraNodeDown"
FIRING_WITHIN_S = 150.0
RESOLVED_WITHIN_S = 120.0
BACK_WITHIN_S = 150.0
FIGURES = integration.FIGURES


@pytest.fixture(scope="module")
def receiver(request: pytest.FixtureRequest) -> str:
    """The alert receiver's URL, from the inventory (monitoring host, prometheus_alert_receiver_port)."""
    monitor = group_hosts("monitoring")[0]
    settings = hostvars(monitor)
    if not settings.get("prometheus_alert_receiver_enabled"):
        pytest.skip(f"the inventory runs no alert receiver on {monitor} (prometheus_alert_receiver_enabled)")
    url = f"http://{address(monitor)}:{settings['prometheus_alert_receiver_port']}"
    try:
        _notifications(url)
    except OSError as error:
        pytest.fail(f"alert receiver {url} does not answer ({error}): run playbooks/monitoring.yml")
    # The figures print with the integration suite's; alone, this module prints them itself.
    if not request.config.pluginmanager.is_registered(integration):
        request.config.pluginmanager.register(integration, "lab-figures")
    return url


def _notifications(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/alerts", timeout=10) as response:
        return json.load(response)


def _wait_for(url: str, after: int, status: str, within_s: float) -> None:
    """Until a notification past the first `after` holds ALERT for NODE with `status`."""
    deadline = time.monotonic() + within_s
    while True:
        for notification in _notifications(url)[after:]:
            for alert in notification.get("alerts", []):
                labels = alert.get("labels", {})
                if labels.get("alertname") == ALERT and labels.get("instance") == NODE and alert["status"] == status:
                    return
        assert time.monotonic() < deadline, f"no {status} {ALERT} for {NODE} at {url} within {within_s:.0f} s"
        time.sleep(2)


def test_a_stopped_cassandra_node_is_alerted_and_resolved(receiver: str) -> None:
    node, peer = address(NODE), address(PEER)
    # Never take a second replica of Yangon down: start only from a healthy DC.
    _wait_status(peer, node, "UN", 30)
    seen = len(_notifications(receiver))
    try:
        stopped = ssh(node, "systemctl stop cassandra", timeout_s=120)
        assert stopped.returncode == 0, stopped.stderr
        stopped_at = time.monotonic()
        _wait_for(receiver, seen, "firing", FIRING_WITHIN_S)
        FIGURES[f"{ALERT} for {NODE} at the receiver, s after the stop"] = round(time.monotonic() - stopped_at)
        started = ssh(node, "systemctl start cassandra", timeout_s=120)
        assert started.returncode == 0, started.stderr
        started_at = time.monotonic()
        _wait_for(receiver, seen, "resolved", RESOLVED_WITHIN_S)
        FIGURES[f"{ALERT} for {NODE} resolved at the receiver, s after the start"] = round(
            time.monotonic() - started_at
        )
    finally:
        ssh(node, "systemctl start cassandra", timeout_s=120)
        FIGURES[f"{NODE} UN again, s after the alert test's last check"] = round(
            _wait_status(peer, node, "UN", BACK_WITHIN_S)
        )
