"""What the integration tests know about the lab: hosts, groups and regions from the
lab inventory, small HTTP and SSH helpers, where a receipt's sale is stored, and the
dataset's expected figures. The app's facts (store timezone, TTLs, invoice id rule,
keyspace naming) are imported from its pure modules, never copied."""

from __future__ import annotations

import csv
import http.client as httplib
import json
import re
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from cassandra import ConsistencyLevel
from checkout.domain import STORE_TZ, region_keyspace
from checkout.events import stored_lines

from tests.conftest import run

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "inventories" / "lab" / "hosts.yml"
SSH_KEY = REPO / ".lab" / "ssh" / "id_ed25519"
DATASET = REPO / "app" / "checkout" / "data" / "supermarket_sales.csv"
API_PORT = 8080
CONSUMER_METRICS_PORT = 8081
CQL_PORT = 9042
# roles/payment_gateway's default port (GatewaySettings.port); an inventory may set payment_gateway_port.
GATEWAY_PORT = 8090
# roles/node_exporter's default node_exporter_port.
NODE_EXPORTER_PORT = 9100
# roles/checkout_app: checkout_app_cassandra_keyspace, the keyspace every DC holds (sales).
SHARED_KEYSPACE = "checkout"


@dataclass
class Inventory:
    hostvars: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)

    def address(self, host: str) -> str:
        return str(self.hostvars[host].get("ansible_host", host))

    def region(self, host: str) -> str:
        return str(self.hostvars[host].get("region", ""))

    def app_hosts(self) -> list[str]:
        return self.groups.get("app", [])

    def app_host_of(self, region: str) -> str:
        return next(h for h in self.app_hosts() if self.region(h) == region)

    def branch_of(self, region: str) -> str:
        """The branch whose tills the region's API serves (its region group's `branch`)."""
        return str(self.hostvars[self.app_host_of(region)]["branch"])

    def home_region(self, branch: str) -> str:
        """The region (= DC) whose API serves the branch: its carts and stock live there."""
        return next(self.region(h) for h in self.app_hosts() if self.hostvars[h].get("branch") == branch)

    def home_keyspace(self, branch: str) -> str:
        """The region keyspace holding the branch's carts and stock (checkout_<region>)."""
        return region_keyspace(SHARED_KEYSPACE, self.home_region(branch))

    def gateway_url(self) -> str:
        """The sandbox payment gateway (group payment_gateway) as the app hosts reach it."""
        hosts = self.groups.get("payment_gateway", [])
        assert hosts, "no host in inventory group payment_gateway: add the gateway to inventories/lab/hosts.yml"
        port = self.hostvars[hosts[0]].get("payment_gateway_port", GATEWAY_PORT)
        return f"http://{self.address(hosts[0])}:{port}"

    def gateway_charge(self, key: str) -> Reply:
        """GET /v1/charges/{key} on the gateway: the stored charge, or 404."""
        host, _, port = self.gateway_url().removeprefix("http://").partition(":")
        return http(host, "GET", f"/v1/charges/{quote(key, safe='')}", port=int(port))

    def cassandra_by_dc(self) -> dict[str, list[str]]:
        dcs: dict[str, list[str]] = {}
        for host in self.groups.get("cassandra", []):
            dc = self.hostvars[host].get("cassandra_dc") or self.region(host)
            dcs.setdefault(dc, []).append(self.address(host))
        return dcs

    def standby_replicas(self) -> int:
        """checkout_app_region_standby_replicas: an app host's, else the role's default."""
        name = "checkout_app_region_standby_replicas"
        defaults = yaml.safe_load((REPO / "roles/checkout_app/defaults/main.yml").read_text())
        return int(self.hostvars[self.app_hosts()[0]].get(name, defaults[name]))

    def kafka_bootstrap(self) -> list[str]:
        return [f"{self.address(h)}:9092" for h in self.groups.get("kafka", [])]


def load_inventory(path: Path = INVENTORY) -> Inventory:
    """Group vars, then host vars, as Ansible merges them (enough for this inventory)."""
    inventory = Inventory()

    def walk(name: str, group: dict[str, Any], inherited: dict[str, Any]) -> list[str]:
        group = group or {}
        merged = {**inherited, **(group.get("vars") or {})}
        members: list[str] = []
        for host, host_vars in (group.get("hosts") or {}).items():
            current = inventory.hostvars.setdefault(host, {})
            for key, value in merged.items():
                current.setdefault(key, value)
            current.update(host_vars or {})
            members.append(host)
        for child, child_group in (group.get("children") or {}).items():
            members.extend(walk(child, child_group, merged))
        inventory.groups[name] = sorted(set(inventory.groups.get(name, []) + members))
        return members

    data = yaml.safe_load(path.read_text())
    walk("all", data["all"], {})
    # Region vars sit on region groups; a host listed again under a functional group
    # (cassandra, app) keeps them: re-apply the region groups last.
    for group_data in (data["all"].get("children") or {}).values():
        region_vars = (group_data or {}).get("vars") or {}
        for host in (group_data or {}).get("hosts") or {}:
            for key, value in region_vars.items():
                inventory.hostvars[host][key] = value
    return inventory


@dataclass(frozen=True)
class SaleKey:
    """Where a sale's one `sales` row is: its branch's partition of the store day, then the
    sale time and invoice id, all in the receipt."""

    branch: str
    day: date
    sold_at: datetime
    invoice_id: str

    @classmethod
    def of(cls, receipt: Mapping[str, Any]) -> SaleKey:
        sold_at = datetime.fromisoformat(receipt["sold_at"])
        return cls(receipt["branch"], sold_at.astimezone(STORE_TZ).date(), sold_at, receipt["invoice_id"])

    def params(self) -> tuple[str, date, datetime, str]:
        return self.branch, self.day, self.sold_at, self.invoice_id


# The columns after the WHERE: a SaleKey's params().
SALE_WHERE = "WHERE branch = ? AND day = ? AND sold_at = ? AND invoice_id = ?"


# How long a stored sale may take to be readable in a DC.
VISIBLE_WITHIN_S = 20.0


def wait_for_sale(session: Any, sale: SaleKey, lines: int, since: float | None = None) -> tuple[Any, float]:
    """Poll the invoice's `sales` row until it holds `lines` lines; returns the row (None if
    it never came) and the seconds since `since`."""
    statement = session.prepare(
        f"SELECT invoice_id, branch, total, lines, TTL(total) AS ttl, TTL(lines) AS lines_ttl FROM sales {SALE_WHERE}"
    )
    # LOCAL_QUORUM, as the services read: after a node of the DC was down (the rolling-restart
    # and node-loss tests), writes made at the fallback level sit on one replica until hints are
    # replayed, and a LOCAL_ONE read of the other replica would miss them for a while.
    statement.consistency_level = ConsistencyLevel.LOCAL_QUORUM
    started = time.perf_counter() if since is None else since
    while True:
        row = session.execute(statement, sale.params()).one()
        if (row is not None and len(stored_lines(row._asdict())) >= lines) or (
            time.perf_counter() - started > VISIBLE_WITHIN_S
        ):
            return row, time.perf_counter() - started
        time.sleep(0.05)


def rows_of_invoice(session: Any, sale: SaleKey) -> list[Any]:
    """Every row of the invoice in its branch-day partition within a minute of the sale:
    one, unless a retry stored the sale a second time under another sale time."""
    statement = session.prepare(
        "SELECT invoice_id, sold_at FROM sales WHERE branch = ? AND day = ? AND sold_at >= ? AND sold_at <= ?"
    )
    statement.consistency_level = ConsistencyLevel.LOCAL_QUORUM
    around = (sale.sold_at - timedelta(minutes=1), sale.sold_at + timedelta(minutes=1))
    return [r for r in session.execute(statement, (sale.branch, sale.day, *around)) if r.invoice_id == sale.invoice_id]


def port_open(host: str, port: int, timeout_s: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any
    elapsed_s: float


def http(
    host: str,
    method: str,
    path: str,
    *,
    json_body: Any = None,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
    port: int = API_PORT,
    timeout_s: float = 30.0,
) -> Reply:
    payload = raw
    if payload is None and json_body is not None:
        payload = json.dumps(json_body).encode()
    sent_headers = {"Content-Type": "application/json", **(headers or {})}
    connection = httplib.HTTPConnection(host, port, timeout=timeout_s)
    started = time.perf_counter()
    try:
        connection.request(method, path, body=payload, headers=sent_headers)
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    elapsed = time.perf_counter() - started
    try:
        body: Any = json.loads(data) if data else None
    except ValueError:
        body = data.decode(errors="replace")
    return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, body, elapsed)


def ok(reply: Reply, status: int = 200) -> Any:
    assert reply.status == status, f"HTTP {reply.status}: {reply.body}"
    return reply.body


def checkout(api: str, branch: str, payment: str = "Cash") -> tuple[str, dict[str, Any], Reply]:
    """A cart with two products, checked out; returns the key, the request and the reply."""
    products = ok(http(api, "GET", "/products"))
    cart = ok(http(api, "POST", "/carts", json_body={"branch": branch}), 201)
    picks = [products[int(time.time_ns()) % len(products)], products[7]]
    for quantity, product in enumerate(picks, start=2):
        body = {"product_id": product["product_id"], "quantity": quantity}
        ok(http(api, "POST", f"/carts/{cart['cart_id']}/items", json_body=body))
    request = {"payment": payment, "customer_type": "Member", "gender": "Female", "rating": 8.5}
    key = str(uuid.uuid4())
    reply = http(
        api,
        "POST",
        f"/carts/{cart['cart_id']}/checkout",
        json_body=request,
        headers={"Idempotency-Key": key},
    )
    return key, {"cart_id": cart["cart_id"], "body": request}, reply


def ssh(address: str, command: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "ssh", "-i", str(SSH_KEY), "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", "BatchMode=yes", f"root@{address}", command,
        ],
        capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip


def metric_samples(text: str, name: str) -> Iterator[tuple[str, float]]:
    """(labels, value) of every sample of a metric in Prometheus text format."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels, _, value = line.rpartition(" ")
            yield labels, float(value)


def metric_total(host: str, port: int, name: str) -> float:
    """The sum of every sample of a metric a service serves on /metrics (0 when it has none)."""
    reply = http(host, "GET", "/metrics", port=port)
    text = reply.body if isinstance(reply.body, str) else ""
    return sum(value for _, value in metric_samples(text, name))


@dataclass(frozen=True)
class DatasetFigures:
    invoices: frozenset[str]
    partitions: frozenset[tuple[str, str]]  # (branch, ISO day)
    rows: int
    quantity: int
    total: Decimal
    tax: Decimal
    cogs: Decimal
    gross_income: Decimal


def dataset_figures(path: Path = DATASET) -> DatasetFigures:
    invoices: set[str] = set()
    partitions: set[tuple[str, str]] = set()
    quantity, rows = 0, 0
    total = tax = cogs = gross = Decimal(0)
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows += 1
            invoices.add(row["Invoice ID"])
            month, day, year = (int(part) for part in row["Date"].split("/"))
            partitions.add((row["Branch"], f"{year:04d}-{month:02d}-{day:02d}"))
            quantity += int(row["Quantity"])
            total += Decimal(row["Total"])
            tax += Decimal(row["Tax 5%"])
            cogs += Decimal(row["Cost of goods sold"])
            gross += Decimal(row["Gross income"])
    return DatasetFigures(frozenset(invoices), frozenset(partitions), rows, quantity, total, tax, cogs, gross)


class AlertReceiver:
    """The lab's alert receiver (roles/prometheus, on the monitoring host): every
    notification Alertmanager delivered, in order."""

    def __init__(self, url: str) -> None:
        self.url = url

    def notifications(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/alerts", timeout=10) as response:
            return list(json.load(response))

    def wait_for(self, alertname: str, instance: str, status: str, after: int, within_s: float) -> float:
        """Seconds until a notification past the first `after` holds `alertname` for
        `instance` with `status` (firing, resolved); fails after `within_s`."""
        started = time.monotonic()
        while True:
            for notification in self.notifications()[after:]:
                for alert in notification.get("alerts", []):
                    labels = alert.get("labels", {})
                    if (labels.get("alertname"), labels.get("instance"), alert.get("status")) == (
                        alertname,
                        instance,
                        status,
                    ):
                        return time.monotonic() - started
            if time.monotonic() - started > within_s:
                raise AssertionError(f"no {status} {alertname} for {instance} at {self.url} within {within_s:.0f} s")
            time.sleep(2)


def alert_receiver() -> AlertReceiver | None:
    """The lab's alert receiver, when the inventory runs one (prometheus_alert_receiver_*:
    group vars, so read through ansible-inventory)."""
    from tests.conftest import address, group_hosts, hostvars

    monitor = group_hosts("monitoring")[0]
    settings = hostvars(monitor)
    if not settings.get("prometheus_alert_receiver_enabled"):
        return None
    return AlertReceiver(f"http://{address(monitor)}:{settings['prometheus_alert_receiver_port']}")


def status_line(peer: str, address: str) -> str | None:
    """The line of `address` in `nodetool status` run on `peer`, if it has one."""
    result = ssh(peer, "nodetool status", timeout_s=60)
    for line in result.stdout.splitlines():
        match = re.match(r"^[UD][NLJM]\s+(\S+)\s", line)
        if match and match.group(1) == address:
            return line
    return None


def status_of(peer: str, address: str) -> str | None:
    """Two-letter state of `address` in `nodetool status` run on `peer` (UN, DN...)."""
    line = status_line(peer, address)
    return None if line is None else line[:2]


def wait_status(peer: str, address: str, wanted: str, within_s: float) -> float:
    started = time.perf_counter()
    while True:
        state = status_of(peer, address)
        if state == wanted:
            return time.perf_counter() - started
        if time.perf_counter() - started > within_s:
            raise AssertionError(f"{address} is {state} on {peer}'s nodetool status, not {wanted}")
        time.sleep(1)


def wait_back(peer: str, address: str, within_s: float) -> float:
    """Wait until `peer` sees the restarted node `address` UN and its CQL port opens (at
    most a minute more); the seconds until UN."""
    waited = wait_status(peer, address, "UN", within_s)
    deadline = time.perf_counter() + 60
    while not port_open(address, CQL_PORT) and time.perf_counter() < deadline:
        time.sleep(1)
    assert port_open(address, CQL_PORT), f"{address}:{CQL_PORT} closed after the restart"
    return waited


def play(playbook: str, *extra: str) -> float:
    """ansible-playbook playbooks/<playbook> against the lab inventory; its seconds."""
    started = time.perf_counter()
    run(["ansible-playbook", "-i", str(INVENTORY), f"playbooks/{playbook}", *extra], timeout=900, check=True)
    return time.perf_counter() - started
