"""Where the load goes and what it checks, read from an Ansible inventory.

`ansible-inventory --list` merges group and host variables exactly as the playbooks see
them, so the load test hits the same addresses the deployment configured.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LAB_INVENTORY = REPO / "inventories" / "lab"
# Role defaults (roles/checkout_app, roles/prometheus), used when the inventory does not override them.
DEFAULT_API_PORT = 8080
DEFAULT_PROMETHEUS_PORT = 9090
DEFAULT_KAFKA_PORT = 9092
DEFAULT_GATEWAY_PORT = 8090  # roles/payment_gateway: payment_gateway_port


class InventoryError(RuntimeError):
    pass


@dataclass(frozen=True)
class Targets:
    api_by_branch: dict[str, str]
    cassandra_by_dc: dict[str, list[str]]
    kafka_bootstrap: list[str]
    kafka_hosts: list[str]
    prometheus: str | None
    lab_vms: list[str]
    app_hosts: list[str] = field(default_factory=list)
    cassandra_hosts_by_dc: dict[str, list[str]] = field(default_factory=dict)
    dc_by_branch: dict[str, str] = field(default_factory=dict)  # the region (DC) of each branch's API
    gateway: str | None = None  # the sandbox payment gateway's base URL

    def branch_hosts_arg(self) -> str:
        return ",".join(f"{branch}={url}" for branch, url in sorted(self.api_by_branch.items()))

    def any_api(self) -> str:
        return next(iter(sorted(self.api_by_branch.items())))[1]


def _address(hostvars: dict[str, Any], host: str) -> str:
    return str(hostvars.get(host, {}).get("ansible_host", host))


def from_listing(listing: dict[str, Any]) -> Targets:
    hostvars: dict[str, dict[str, Any]] = listing.get("_meta", {}).get("hostvars", {})

    def members(group: str) -> list[str]:
        return list(listing.get(group, {}).get("hosts", []))

    api: dict[str, str] = {}
    dc_by_branch: dict[str, str] = {}
    for host in members("app"):
        branch = hostvars.get(host, {}).get("branch")
        if not branch:
            raise InventoryError(f"app host {host} has no branch: put it in a region group with vars.branch")
        if branch in api:
            raise InventoryError(f"two app hosts serve branch {branch}; keep one API per region for the load test")
        port = hostvars[host].get("checkout_app_api_port", DEFAULT_API_PORT)
        api[branch] = f"http://{_address(hostvars, host)}:{port}"
        dc_by_branch[branch] = str(hostvars[host].get("cassandra_dc") or hostvars[host].get("region"))
    if not api:
        raise InventoryError("the inventory has no host in group app: nothing to load")

    cassandra: dict[str, list[str]] = {}
    cassandra_hosts: dict[str, list[str]] = {}
    for host in members("cassandra"):
        dc = str(hostvars.get(host, {}).get("cassandra_dc") or hostvars.get(host, {}).get("region"))
        cassandra.setdefault(dc, []).append(_address(hostvars, host))
        cassandra_hosts.setdefault(dc, []).append(host)

    kafka = [
        f"{_address(hostvars, h)}:{hostvars.get(h, {}).get('kafka_port', DEFAULT_KAFKA_PORT)}" for h in members("kafka")
    ]
    monitors = members("monitoring")
    prometheus = None
    if monitors:
        port = hostvars.get(monitors[0], {}).get("prometheus_port", DEFAULT_PROMETHEUS_PORT)
        prometheus = f"http://{_address(hostvars, monitors[0])}:{port}"
    gateways = members("payment_gateway")
    gateway = None
    if gateways:
        port = hostvars.get(gateways[0], {}).get("payment_gateway_port", DEFAULT_GATEWAY_PORT)
        gateway = f"http://{_address(hostvars, gateways[0])}:{port}"
    vms = sorted(h for h in hostvars if hostvars[h].get("ansible_connection") != "local")
    return Targets(
        api, cassandra, kafka, members("kafka"), prometheus, vms, members("app"), cassandra_hosts, dc_by_branch, gateway
    )


def from_inventory(inventory: Path = LAB_INVENTORY) -> Targets:
    # The controller venv's own ansible-inventory, also when the venv is not on PATH.
    tool = shutil.which("ansible-inventory", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    if tool is None:
        raise InventoryError("ansible-inventory not found: run through ./lab, which sets up the controller venv")
    listed = subprocess.run([tool, "-i", str(inventory), "--list"], capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        raise InventoryError(f"ansible-inventory -i {inventory} failed: {listed.stderr.strip()[-500:]}")
    return from_listing(json.loads(listed.stdout))
