"""The inventory edits of scaling a DC out and in (loadtest.scale), made as an operator
would make them in hosts.yml: pure functions over the parsed YAML, each returning a copy.

A new Cassandra node joins the DC's region group (so it gets the region's variables) and
the `cassandra` group. Its name, address and rack follow the DC's last node: cass-a2 at
.12 on rack2 gives cass-a3 at the next free address on rack3."""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


class ScaleError(ValueError):
    pass


@dataclass(frozen=True)
class NewNode:
    name: str
    address: str
    rack: str
    group: str  # the region group it joins


def _groups(data: dict[str, Any]) -> dict[str, Any]:
    return dict(data["all"].get("children") or {})


def _hosts(group: dict[str, Any] | None) -> dict[str, Any]:
    return dict((group or {}).get("hosts") or {})


def _all_hosts(data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for group in _groups(data).values():
        for host, host_vars in _hosts(group).items():
            yield host, host_vars or {}


def region_group(data: dict[str, Any], dc: str) -> str:
    """The group whose `region` is the DC and which holds Cassandra nodes."""
    cassandra = _hosts(_groups(data).get("cassandra"))
    for name, group in _groups(data).items():
        if ((group or {}).get("vars") or {}).get("region") == dc and set(_hosts(group)) & set(cassandra):
            return name
    raise ScaleError(f"no region group with region {dc!r} and Cassandra nodes in the inventory")


def new_cassandra_node(data: dict[str, Any], dc: str) -> NewNode:
    group = region_group(data, dc)
    cassandra = _hosts(_groups(data)["cassandra"])
    members = _hosts(_groups(data)[group])
    nodes = sorted(h for h in members if h in cassandra)
    match = re.fullmatch(r"(.*?)(\d+)", nodes[-1])
    if match is None:
        raise ScaleError(f"{nodes[-1]}: a Cassandra host name must end in a number to derive the next one")
    taken_names = {host for host, _ in _all_hosts(data)}
    taken_addresses = {str(v.get("ansible_host")) for _, v in _all_hosts(data) if v.get("ansible_host")}
    number = int(match.group(2)) + 1
    while f"{match.group(1)}{number}" in taken_names:
        number += 1
    last = ipaddress.ip_address(str((members[nodes[-1]] or {})["ansible_host"]))
    address = last + 1
    while str(address) in taken_addresses:
        address += 1
    return NewNode(f"{match.group(1)}{number}", str(address), f"rack{len(nodes) + 1}", group)


def with_node(data: dict[str, Any], node: NewNode) -> dict[str, Any]:
    edited = copy.deepcopy(data)
    children = edited["all"]["children"]
    children[node.group].setdefault("hosts", {})[node.name] = {"ansible_host": node.address, "rack": node.rack}
    children["cassandra"].setdefault("hosts", {})[node.name] = None
    return edited


def marked_to_leave(data: dict[str, Any], host: str) -> dict[str, Any]:
    """The host marked cassandra_decommission in the `cassandra` group."""
    edited = copy.deepcopy(data)
    cassandra = edited["all"]["children"]["cassandra"]["hosts"]
    if host not in cassandra:
        raise ScaleError(f"{host} is not in the cassandra group")
    cassandra[host] = {**(cassandra[host] or {}), "cassandra_decommission": True}
    return edited


def without(data: dict[str, Any], host: str) -> dict[str, Any]:
    """The host gone from every group."""
    edited = copy.deepcopy(data)
    for group in edited["all"]["children"].values():
        if group and group.get("hosts") and host in group["hosts"]:
            del group["hosts"][host]
    return edited
