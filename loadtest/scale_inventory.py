"""The inventory edits of scaling a region out and in (loadtest.scale), made as an operator
would make them in hosts.yml: pure functions over the parsed YAML, each returning a copy.

A new node joins the region's group (so it gets the region's variables) and its service
group. Its name and address follow the region's last node of that service: cass-a2 at
.12 on rack2 gives cass-a3 at the next free address on rack3; kafka-a gives kafka-a2, a
broker only (kafka_controller: false) with the next free node ID."""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


class ScaleError(ValueError):
    pass


@dataclass(frozen=True)
class NewNode:
    name: str
    address: str
    group: str  # the region group it joins
    service: str  # the service group it joins: cassandra, kafka
    host_vars: dict[str, Any]  # its variables, in the region group


def _groups(data: dict[str, Any]) -> dict[str, Any]:
    return dict(data["all"].get("children") or {})


def _hosts(group: dict[str, Any] | None) -> dict[str, Any]:
    return dict((group or {}).get("hosts") or {})


def _all_hosts(data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for group in _groups(data).values():
        for host, host_vars in _hosts(group).items():
            yield host, host_vars or {}


def region_group(data: dict[str, Any], dc: str, service: str = "cassandra") -> str:
    """The group whose `region` is the DC and which holds nodes of the service."""
    members = _hosts(_groups(data).get(service))
    for name, group in _groups(data).items():
        if ((group or {}).get("vars") or {}).get("region") == dc and set(_hosts(group)) & set(members):
            return name
    raise ScaleError(f"no region group with region {dc!r} and {service} nodes in the inventory")


def _next(data: dict[str, Any], group: str, service: str, after: list[str]) -> tuple[str, str, list[str]]:
    """The next free name and address after the region's last node of the service; its nodes."""
    members = _hosts(_groups(data)[group])
    nodes = sorted(h for h in members if h in _hosts(_groups(data)[service]))
    stem = nodes[-1].rstrip("0123456789")
    taken_names = {host for host, _ in _all_hosts(data)}
    taken_addresses = {str(v.get("ansible_host")) for _, v in _all_hosts(data) if v.get("ansible_host")} | set(after)
    number = int(nodes[-1][len(stem) :] or 1) + 1
    while f"{stem}{number}" in taken_names:
        number += 1
    address = ipaddress.ip_address(str((members[nodes[-1]] or {})["ansible_host"])) + 1
    while str(address) in taken_addresses:
        address += 1
    return f"{stem}{number}", str(address), nodes


def new_cassandra_node(data: dict[str, Any], dc: str) -> NewNode:
    group = region_group(data, dc)
    name, address, nodes = _next(data, group, "cassandra", [])
    return NewNode(name, address, group, "cassandra", {"ansible_host": address, "rack": f"rack{len(nodes) + 1}"})


def new_kafka_broker(data: dict[str, Any], dc: str, taken: list[str]) -> NewNode:
    """A broker only: the controller quorum's voters are fixed when the cluster is formed."""
    group = region_group(data, dc, "kafka")
    name, address, _ = _next(data, group, "kafka", taken)
    ids = [int(v["kafka_node_id"]) for _, v in _all_hosts(data) if "kafka_node_id" in v]
    node_id = max(ids, default=len(_hosts(_groups(data)["kafka"]))) + 1
    host_vars = {"ansible_host": address, "kafka_node_id": node_id, "kafka_controller": False}
    return NewNode(name, address, group, "kafka", host_vars)


def with_node(data: dict[str, Any], node: NewNode) -> dict[str, Any]:
    edited = copy.deepcopy(data)
    children = edited["all"]["children"]
    children[node.group].setdefault("hosts", {})[node.name] = dict(node.host_vars)
    children[node.service].setdefault("hosts", {})[node.name] = None
    return edited


def marked_to_leave(data: dict[str, Any], host: str, service: str = "cassandra") -> dict[str, Any]:
    """The host marked <service>_decommission in the service's group."""
    edited = copy.deepcopy(data)
    members = edited["all"]["children"][service]["hosts"]
    if host not in members:
        raise ScaleError(f"{host} is not in the {service} group")
    members[host] = {**(members[host] or {}), f"{service}_decommission": True}
    return edited
