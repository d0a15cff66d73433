"""The quorum arithmetic of a keyspace's replicas: which consistency levels a set of live
replicas can serve, and which write/read pairs always overlap (no stale read).

Pure, so the consistency matrix and the node-loss test judge what they measure against
the same predictions. Replicas are (dc, n) pairs, one per replica of a row; the
coordinator's DC decides what LOCAL_* counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from itertools import combinations

Replica = tuple[str, int]

WRITE_LEVELS = ("ANY", "ONE", "LOCAL_ONE", "LOCAL_QUORUM", "QUORUM", "EACH_QUORUM", "ALL")
READ_LEVELS = ("ONE", "LOCAL_ONE", "LOCAL_QUORUM", "QUORUM", "ALL")


def replicas(factors: Mapping[str, int]) -> frozenset[Replica]:
    return frozenset((dc, n) for dc, factor in factors.items() for n in range(factor))


def _quorum(count: int) -> int:
    return count // 2 + 1


def acknowledges(level: str, acked: frozenset[Replica], factors: Mapping[str, int], local_dc: str) -> bool:
    """Whether replicas `acked` answering satisfy `level` for a coordinator in `local_dc`."""
    in_dc = {dc: sum(1 for d, _ in acked if d == dc) for dc in factors}
    total = sum(factors.values())
    match level:
        case "ANY":
            return True  # a hint on the coordinator is enough
        case "ONE":
            return len(acked) >= 1
        case "LOCAL_ONE":
            return in_dc.get(local_dc, 0) >= 1
        case "LOCAL_QUORUM":
            return in_dc.get(local_dc, 0) >= _quorum(factors.get(local_dc, 0))
        case "QUORUM":
            return len(acked) >= _quorum(total)
        case "EACH_QUORUM":
            return all(in_dc[dc] >= _quorum(factor) for dc, factor in factors.items())
        case "ALL":
            return len(acked) == total
    raise ValueError(f"unknown consistency level {level!r}")


def available(level: str, alive: Iterable[Replica], factors: Mapping[str, int], local_dc: str) -> bool:
    """Whether a coordinator in `local_dc` (itself up) can serve `level` with these replicas up."""
    return acknowledges(level, frozenset(alive), factors, local_dc)


def _sets(
    level: str, factors: tuple[tuple[str, int], ...], local_dc: str, alive: frozenset[Replica]
) -> list[frozenset[Replica]]:
    every = sorted(alive)
    return [
        frozenset(chosen)
        for size in range(len(every) + 1)
        for chosen in combinations(every, size)
        if acknowledges(level, frozenset(chosen), dict(factors), local_dc)
    ]


@cache
def _always_overlap(
    write: str,
    read: str,
    factors: tuple[tuple[str, int], ...],
    write_dc: str,
    read_dc: str,
    alive: frozenset[Replica],
) -> bool:
    if write == "ANY":
        return False  # the write may live only in a hint until a replica is back
    writes, reads = _sets(write, factors, write_dc, alive), _sets(read, factors, read_dc, alive)
    return all(w & r for w in writes for r in reads)


def never_stale(
    write: str,
    read: str,
    factors: Mapping[str, int],
    write_dc: str,
    read_dc: str,
    alive: Iterable[Replica] | None = None,
) -> bool:
    """Whether every set of live replicas that can acknowledge the write shares a replica
    with every set that can answer the read: then a read after the write's ack sees it."""
    up = replicas(factors) if alive is None else frozenset(alive)
    return _always_overlap(write, read, tuple(sorted(factors.items())), write_dc, read_dc, up)
