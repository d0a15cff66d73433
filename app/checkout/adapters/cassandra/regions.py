"""Prepared statements per region keyspace, and which DC serves a branch's state."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from checkout.adapters.cassandra.session import Cassandra
from checkout.domain import Branch, region_keyspace

S = TypeVar("S")


class PerRegion(Generic[S]):
    """`build(db, keyspace)` once per region keyspace of the branches' home DCs."""

    def __init__(
        self,
        db: Cassandra,
        shared_keyspace: str,
        branch_dcs: Mapping[Branch, str],
        build: Callable[[Cassandra, str], S],
    ) -> None:
        self._dc_of = dict(branch_dcs)
        self.by_dc = {
            dc: build(db, region_keyspace(shared_keyspace, dc))
            for dc in sorted(set(branch_dcs.values()))
        }

    def of_branch(self, branch: Branch) -> tuple[S, str]:
        """The branch's statements and the DC to run them in."""
        dc = self._dc_of[branch]
        return self.by_dc[dc], dc
