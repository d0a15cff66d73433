"""Filters over the Kafka brokers of the inventory and their replica assignment."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from ansible.module_utils.parsing.convert_bool import boolean

_PARTITION = re.compile(r"Topic:\s*(\S+)\s+Partition:\s*\d+\b.*?\bReplicas:\s*([\d,]+)")


def kafka_node_ids(hosts: list[str], hostvars: Any, all_hosts: list[str]) -> list[int]:
    """Each host's KRaft node ID: its kafka_node_id, else its place in the kafka group (the role's default)."""
    return [int(hostvars[h].get("kafka_node_id") or all_hosts.index(h) + 1) for h in hosts]


def kafka_marked(hosts: list[str], hostvars: Any, name: str, value: bool = True) -> list[str]:
    """The hosts whose boolean host variable `name` is set to `value`, read as `| bool` reads it."""
    return [h for h in hosts if name in hostvars[h] and boolean(hostvars[h][name], strict=False) == value]


def kafka_replica_counts(describe: str, topics: list[str] | None = None) -> dict[int, int]:
    """Replicas each broker holds of the named topics (default all), from `kafka-topics --describe`."""
    counts: Counter[int] = Counter()
    for match in _PARTITION.finditer(describe):
        if topics is None or match.group(1) in topics:
            counts.update(int(broker) for broker in match.group(2).split(","))
    return dict(counts)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "kafka_node_ids": kafka_node_ids,
            "kafka_marked": kafka_marked,
            "kafka_replica_counts": kafka_replica_counts,
        }
