"""Prometheus scrapes every target up, with the alert rules loaded."""

import json
import time

API = "http://127.0.0.1:9090/api/v1"


def _get(host, path):
    out = host.check_output(
        f"python3 -c \"import urllib.request;print(urllib.request.urlopen('{API}/{path}').read().decode())\""
    )
    return json.loads(out)["data"]


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
        "CassandraNodeDown",
        "KafkaUnderReplicatedPartitions",
        "KafkaOfflinePartitions",
        "CheckoutConsumerLagHigh",
        "CheckoutErrorRateHigh",
        "CheckoutLatencyP99High",
    } <= names
