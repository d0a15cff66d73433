"""Filters that derive the Cassandra topology (DCs, seeds, RF) from the inventory."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ansible.module_utils.parsing.convert_bool import boolean


def _dc(hostvars: Any, host: str) -> str:
    return str(hostvars[host].get("cassandra_dc") or hostvars[host].get("region") or "")


def _marked(hostvars: Any, host: str, name: str) -> bool:
    # Ansible's own parsing, so a mark means here what `| bool` makes of it in the tasks.
    return boolean(hostvars[host].get(name, False), strict=False)


def cassandra_staying(hosts: list[str], hostvars: Any) -> list[str]:
    """The hosts that stay in the ring: all but those marked cassandra_decommission.

    A leaving node no longer counts towards its DC's size (so the replication factors
    drop before it streams its data away) nor seeds."""
    return [h for h in hosts if not _marked(hostvars, h, "cassandra_decommission")]


def cassandra_dc_sizes(hosts: list[str], hostvars: Any) -> dict[str, int]:
    """Number of Cassandra nodes in each DC."""
    return dict(Counter(_dc(hostvars, h) for h in hosts))


def cassandra_default_rf(dc_sizes: dict[str, int], max_rf: int) -> dict[str, int]:
    """Replication factor per DC: its node count, capped at max_rf."""
    return {dc: min(size, int(max_rf)) for dc, size in dc_sizes.items()}


def cassandra_seeds(hosts: list[str], hostvars: Any) -> list[str]:
    """Hosts marked cassandra_seed; a DC without a mark gets its first host."""
    marked = [h for h in hosts if _marked(hostvars, h, "cassandra_seed")]
    seeded = {_dc(hostvars, h) for h in marked}
    for host in hosts:
        dc = _dc(hostvars, host)
        if dc not in seeded:
            marked.append(host)
            seeded.add(dc)
    return marked


def branch_dcs(hosts: list[str], hostvars: Any) -> dict[str, str]:
    """Each branch's home DC: the DC of the hosts that carry `branch` (its region group).

    Fails on a branch claimed by two DCs: its carts and stock must live in one keyspace."""
    homes: dict[str, str] = {}
    for host in hosts:
        branch = hostvars[host].get("branch")
        if not branch:
            continue
        dc = _dc(hostvars, host)
        if homes.setdefault(str(branch), dc) != dc:
            raise ValueError(f"branch {branch} is in two DCs: {homes[str(branch)]} and {dc}")
    return dict(sorted(homes.items()))


def node_addresses(hosts: list[str], hostvars: Any, override_var: str) -> list[str]:
    """Each host's service address: its inventory override, else its default IPv4, else ansible_host.

    Works for hosts outside the current run (--limit) once their facts are gathered.
    """
    addresses = []
    for host in hosts:
        hv = hostvars[host]
        facts = hv.get("ansible_facts") or {}
        default = (facts.get("default_ipv4") or {}).get("address")
        addresses.append(str(hv.get(override_var) or default or hv.get("ansible_host") or host))
    return addresses


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "cassandra_dc_sizes": cassandra_dc_sizes,
            "cassandra_default_rf": cassandra_default_rf,
            "cassandra_seeds": cassandra_seeds,
            "cassandra_staying": cassandra_staying,
            "node_addresses": node_addresses,
            "branch_dcs": branch_dcs,
        }
