"""Prometheus scrapes every target up, with the alert rules loaded, and alerts travel
Prometheus -> Alertmanager -> the alert receiver."""

import json
import re
import shlex
import time
import uuid
from datetime import UTC, datetime

from conftest import FIGURES

API = "http://127.0.0.1:9090/api/v1"
ALERTMANAGER = "http://127.0.0.1:9093/api/v2"
RECEIVER = "http://127.0.0.1:9095"

# Runs on the node: one HTTP call, the body printed (the node has python3, maybe no curl).
_HTTP = """
import sys, urllib.request
method, url, body = sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None
request = urllib.request.Request(url, data=body and body.encode(), method=method,
                                 headers={"Content-Type": "application/json"})
with urllib.request.urlopen(request, timeout=10) as response:
    print(response.read().decode())
"""

# Runs on the node: a page's HTML, whatever its status (a template error answers 500).
_PAGE = """
import sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=10) as response:
        print(response.read().decode())
except urllib.error.HTTPError as error:
    print(error.code, error.read().decode())
"""


def _call(host, method, url, body=None):
    args = [method, url] + ([json.dumps(body)] if body is not None else [])
    out = host.check_output(f"python3 -c {shlex.quote(_HTTP)} {' '.join(shlex.quote(a) for a in args)}")
    return json.loads(out) if out.strip() else None


def _get(host, path):
    return _call(host, "GET", f"{API}/{path}")["data"]


# Runs on the node: polls the receiver until an alert with these labels and status arrives,
# then prints it with its notification; exits non-zero after `within` seconds.
_WAIT = """
import json, sys, time, urllib.request
url, wanted, status, within = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], float(sys.argv[4])
deadline = time.monotonic() + within
while True:
    with urllib.request.urlopen(url, timeout=10) as response:
        for notification in json.load(response):
            for alert in notification["alerts"]:
                if alert["status"] == status and wanted.items() <= alert["labels"].items():
                    print(json.dumps({"notification": notification, "alert": alert}))
                    sys.exit(0)
    if time.monotonic() > deadline:
        sys.exit(f"no {status} alert with labels {wanted} at {url} within {within:.0f} s")
    time.sleep(0.5)
"""


def _wait_at_receiver(host, labels, within_s, status="firing"):
    """The first recorded alert with these labels and status, and its notification."""
    args = [f"{RECEIVER}/alerts", json.dumps(labels), status, str(within_s)]
    result = host.run(f"python3 -c {shlex.quote(_WAIT)} {' '.join(shlex.quote(a) for a in args)}")
    assert result.rc == 0, result.stderr
    found = json.loads(result.stdout)
    return found["alert"], found["notification"]


def _time(stamp):
    """An RFC 3339 time from Go or Python (nanoseconds, Z) as a datetime."""
    match = re.match(r"(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", stamp)
    assert match, stamp
    fraction = (match.group(2) or ".0")[:7]
    return datetime.fromisoformat(match.group(1) + fraction + match.group(3).replace("Z", "+00:00"))


def test_every_target_is_up(host):
    deadline = time.time() + 60
    while True:
        targets = _get(host, "targets")["activeTargets"]
        health = {(t["labels"]["job"], t["labels"]["instance"]): t["health"] for t in targets}
        if (targets and all(h == "up" for h in health.values())) or time.time() > deadline:
            break
        time.sleep(3)
    assert set(job for job, _ in health) == {"prometheus", "alertmanager", "node"}, health
    assert all(h == "up" for h in health.values()), health


def test_targets_carry_the_region(host):
    targets = _get(host, "targets")["activeTargets"]
    assert {t["labels"].get("region") for t in targets} == {"Yangon"}


def test_alert_rules_are_loaded(host):
    groups = _get(host, "rules")["groups"]
    names = {rule["name"] for group in groups for rule in group["rules"]}
    assert {
        "NodeDown",
        "NodeDiskFilling",
        "NodeClockSkew",
        "NodeClockNotSynchronising",
        "CassandraNodeDown",
        "KafkaUnderReplicatedPartitions",
        "KafkaOfflinePartitions",
        "JvmHeapPressure",
        "CheckoutConsumerLagHigh",
        "CheckoutErrorRateHigh",
        "CheckoutLatencyP99High",
        "CheckoutApiDown",
        "CheckoutConsumerDown",
        "CheckoutConsumerMetricsAbsent",
        "CheckoutDeadLettersGrowing",
        "CheckoutConsistencyDowngraded",
        "Watchdog",
    } <= names


def test_alertmanager_config_passes_amtool(host):
    result = host.run("amtool check-config /etc/prometheus/alertmanager.yml")
    assert result.rc == 0, result.stdout + result.stderr
    assert "2 receivers" in result.stdout, result.stdout
    config = host.file("/etc/prometheus/alertmanager.yml").content_string
    assert "http://127.0.0.1:9095/alerts" in config and "group_wait: 5s" in config


def test_prometheus_sends_to_the_local_alertmanager(host):
    managers = _get(host, "alertmanagers")["activeAlertmanagers"]
    assert [m["url"] for m in managers] == ["http://127.0.0.1:9093/api/v2/alerts"], managers


def test_the_receiver_runs_unprivileged(host):
    service = host.service("alert-receiver")
    assert service.is_running and service.is_enabled
    assert host.check_output("systemctl show -p User --value alert-receiver") == "alert-receiver"
    assert host.user("alert-receiver").shell == "/usr/sbin/nologin"
    assert _call(host, "GET", f"{RECEIVER}/healthz")["status"] == "ok"


def test_an_alert_posted_to_alertmanager_reaches_the_receiver(host):
    """Alertmanager's API to the receiver within 30 s (the lab's group_wait is 5 s). The
    node shares the controller's clock (podman), so the delay is receivedAt - posting time."""
    probe = f"probe-{uuid.uuid4().hex[:8]}"
    posted = datetime.now(UTC)
    alert = {
        "labels": {"alertname": "MoleculeProbe", "probe": probe, "severity": "none"},
        "annotations": {"summary": "Posted by the Molecule verify step"},
        "startsAt": posted.isoformat(),
    }
    _call(host, "POST", f"{ALERTMANAGER}/alerts", [alert])
    _, notification = _wait_at_receiver(host, {"probe": probe}, 30)
    assert notification["receiver"] == "lab-receiver"
    delay = (_time(notification["receivedAt"]) - posted).total_seconds()
    FIGURES["alert posted to Alertmanager's API -> recorded by the receiver (s, group_wait 5s)"] = round(delay, 1)


def test_the_watchdog_reaches_the_receiver_from_prometheus(host):
    """Prometheus fires the Watchdog at its first evaluation; it reaches the receiver within 60 s."""
    alert, notification = _wait_at_receiver(host, {"alertname": "Watchdog"}, 60)
    assert alert["annotations"]["runbook_url"] == "docs/runbooks/Watchdog.md"
    delay = (_time(notification["receivedAt"]) - _time(alert["startsAt"])).total_seconds()
    FIGURES["Watchdog active in Prometheus -> first recorded by the receiver (s)"] = round(delay, 1)


def test_console_pages_render(host):
    # No checkout API in this scenario: the pages must still render, with their empty rows.
    for page in ("index.html", "cassandra.html", "kafka.html"):
        out = host.check_output(f"python3 -c {shlex.quote(_PAGE)} http://127.0.0.1:9090/consoles/{page}")
        assert "<h1>" in out, page
        assert "error executing template" not in out, out[-500:]
