"""The Cassandra session: routing, consistency profiles, and an asyncio bridge with retries.

Routing is token-aware over a DC-aware round robin, so each request goes straight to a
replica. Statements on the shared keyspace go to the local DC. Statements on a region's
own keyspace go to that region's DC: normally the local one; another region's when a
till fails over to this API, or the other way round. When no node of that DC is up, a
statement runs in the next DC by name that holds replicas of its keyspace: for a region
keyspace, the standby DC that checkout-schema gave a replica (Cassandra.execute). Every
statement is prepared and idempotent (immutable rows keyed by invoice, cart or movement),
which is what makes retrying a timed-out write safe: the worst case is writing the same
row twice. No lightweight transactions and no counters are used anywhere.

There is no speculative execution: under load a speculative retry doubles the work of
exactly the requests that are slow because the nodes are busy. A timed-out request is
retried with backoff instead (Cassandra.execute).

Consistency levels live in execution profiles, not on the statements: per DC, one
profile for writes and one for reads at CHECKOUT_CASSANDRA_CONSISTENCY, and two more at
CHECKOUT_CASSANDRA_FALLBACK_CONSISTENCY that a statement is re-run under when the main
level cannot be met (see Cassandra.execute).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections.abc import Iterable, Sequence
from typing import Any

from cassandra import (
    ConsistencyLevel,
    CoordinationFailure,
    DriverException,
    OperationTimedOut,
    ProtocolVersion,
    ReadTimeout,
    Unavailable,
    WriteTimeout,
)
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
from cassandra.policies import (
    DCAwareRoundRobinPolicy,
    ExponentialReconnectionPolicy,
    TokenAwarePolicy,
)
from cassandra.query import BatchStatement, BatchType, PreparedStatement

from checkout import metrics
from checkout.config import Settings
from checkout.domain import failover_dc
from checkout.errors import DependencyUnavailable, RequestRejected

log = logging.getLogger(__name__)

# How soon a node that was down is used again. The driver's default doubles the wait to
# 10 minutes and gives up after 64 tries; within a 50 s DC outage its retries were already
# 35 s apart, so a returning DC could sit unused that long while its region failed over.
# Capped at 10 s, and never giving up.
_RECONNECT = ExponentialReconnectionPolicy(base_delay=1.0, max_delay=10.0, max_attempts=None)

# Worth another try on another replica: the node was slow, down or overloaded.
_TRANSIENT = (
    OperationTimedOut,
    ReadTimeout,
    WriteTimeout,
    Unavailable,
    CoordinationFailure,
    NoHostAvailable,
)

# How many replicas a level waits for, to tell a weaker level from a stronger one.
_STRENGTH = {
    "ANY": 0,
    "ONE": 1,
    "LOCAL_ONE": 1,
    "LOCAL_QUORUM": 2,
    "QUORUM": 3,
    "EACH_QUORUM": 4,
    "ALL": 5,
}
_STATEMENT_RE = re.compile(
    r"^\s*(?:(select|delete)\b.*?\bfrom|(insert)\s+into|(update))\s+([\w.]+)",
    re.IGNORECASE | re.DOTALL,
)
# A warning starts a burst of downgrades; the rest of the burst is only counted.
_BURST_QUIET_S = 60.0


def consistency(name: str) -> int:
    level: int = ConsistencyLevel.name_to_value[name]
    return level


def _for_reads(name: str) -> str:
    """ANY is a write-only level; reads under it use ONE, the nearest equivalent."""
    return "ONE" if name == "ANY" else name


def read_consistency(name: str) -> int:
    return consistency(_for_reads(name))


def fallback_level(main: str, fallback: str) -> str | None:
    """The fallback level, if it is weaker than the main one (else there is none)."""
    if not fallback or _STRENGTH[fallback] >= _STRENGTH[main]:
        return None
    return fallback


def levels(settings: Settings) -> dict[bool, tuple[str, str | None]]:
    """read? -> (main level, fallback level or None), as the profiles apply them."""
    main, fallback = settings.cassandra_consistency, settings.cassandra_fallback_consistency
    return {
        False: (main, fallback_level(main, fallback)),
        True: (
            _for_reads(main),
            fallback_level(_for_reads(main), fallback and _for_reads(fallback)),
        ),
    }


@functools.cache
def statement_kind(cql: str) -> tuple[str, str]:
    """('insert', 'sales') for metrics labels; ('other', '') if unknown. Cached: every
    execution asks, and the prepared statements are a handful of fixed strings."""
    match = _STATEMENT_RE.match(cql)
    if match is None:
        return "other", ""
    kind = next(group for group in match.groups()[:3] if group)
    return kind.lower(), match.group(4).split(".")[-1]


class BurstWarning:
    """Log the first event of a burst; count the rest until `quiet_s` pass without one."""

    def __init__(self, quiet_s: float = _BURST_QUIET_S, clock: Any = time.monotonic) -> None:
        self._quiet_s = quiet_s
        self._clock = clock
        self._last: float | None = None
        self._in_burst = 0

    def note(self) -> int | None:
        """None inside a burst; at a burst's start, how many events the previous one had."""
        now = self._clock()
        starts = self._last is None or now - self._last > self._quiet_s
        self._last = now
        if not starts:
            self._in_burst += 1
            return None
        previous, self._in_burst = self._in_burst, 1
        return previous


def _count_in_burst(counter: Any, burst: BurstWarning, message: str, *args: object) -> None:
    """Count one event; log `message` (its last %d: the previous burst's size) only when
    the event starts a burst, so an outage logs one line, not one per statement."""
    counter.inc()
    previous = burst.note()
    if previous is not None:
        log.warning(message, *args, previous)


def _where(settings: Settings) -> str:
    hosts = ",".join(settings.cassandra_hosts)
    return (
        f"Cassandra at {hosts}:{settings.cassandra_port} (local DC {settings.cassandra_local_dc})"
    )


def connect_cluster(
    settings: Settings,
    *,
    keyspace: str | None,
    schema_agreement_wait_s: int = 10,
    dcs: Iterable[str] = (),
) -> tuple[Any, Any]:
    """Open a cluster and session, or raise DependencyUnavailable saying what to check.

    The session has a profile set (writes, reads, their fallbacks) for the local DC, every
    branch's home DC and `dcs`, each routing to that DC only; the local DC's are the
    defaults. They are all made before connecting: the driver opens pools (and learns
    whether a host is up) only for hosts some profile routes to when it connects, and
    token-aware routing skips a replica whose state it does not know."""

    def profile(dc: str, level: int) -> ExecutionProfile:
        return ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=dc)),
            consistency_level=level,
            serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
            request_timeout=settings.cassandra_request_timeout_s,
        )

    local = settings.cassandra_local_dc
    profiles = {
        EXEC_PROFILE_DEFAULT: profile(local, consistency(levels(settings)[False][0])),
    }
    for dc in sorted({local, *settings.branch_dcs.values(), *dcs}):
        for read, (main, fallback) in levels(settings).items():
            profiles[profile_name(dc, read, False)] = profile(dc, consistency(main))
            if fallback is not None:
                profiles[profile_name(dc, read, True)] = profile(dc, consistency(fallback))
    auth = None
    if settings.cassandra_username and settings.cassandra_password:
        auth = PlainTextAuthProvider(
            settings.cassandra_username, settings.cassandra_password.get_secret_value()
        )
    cluster = Cluster(
        contact_points=settings.cassandra_hosts,
        port=settings.cassandra_port,
        execution_profiles=profiles,
        auth_provider=auth,
        connect_timeout=settings.cassandra_connect_timeout_s,
        max_schema_agreement_wait=schema_agreement_wait_s,
        reconnection_policy=_RECONNECT,
        # Cassandra 5 speaks v5; saying so saves the driver's downgrade dance per host.
        protocol_version=ProtocolVersion.V5,
    )
    try:
        session = cluster.connect(keyspace)
    except NoHostAvailable as error:
        cluster.shutdown()
        raise DependencyUnavailable(
            f"cannot reach {_where(settings)}: {error}; check CHECKOUT_CASSANDRA_HOSTS, "
            "CHECKOUT_CASSANDRA_PORT and that the CQL port is open"
        ) from error
    except DriverException as error:
        cluster.shutdown()
        raise DependencyUnavailable(
            f"cannot open keyspace {keyspace!r} on {_where(settings)}: {error}; "
            "apply the schema first with checkout-schema"
        ) from error
    found = sorted({host.datacenter for host in cluster.metadata.all_hosts() if host.datacenter})
    if local not in found:
        cluster.shutdown()
        raise DependencyUnavailable(
            f"CHECKOUT_CASSANDRA_LOCAL_DC={local!r} is not a data center "
            f"of the cluster at {','.join(settings.cassandra_hosts)} (it has {found})"
        )
    return cluster, session


def profile_name(dc: str, read: bool, fallback: bool) -> str:
    """'write@Yangon', 'fallback-read@Mandalay', ...: one profile per DC and use."""
    return f"{'fallback-' if fallback else ''}{'read' if read else 'write'}@{dc}"


class Cassandra:
    """A connected session with prepared statements and an asyncio bridge."""

    def __init__(self, settings: Settings, *, connect: Any = connect_cluster) -> None:
        self._settings = settings
        self._cluster, self._session = connect(settings, keyspace=settings.cassandra_keyspace)
        self._levels = levels(settings)
        self._downgrade_warning = BurstWarning()
        self._failover_warning = BurstWarning()

    @property
    def local_dc(self) -> str:
        return self._settings.cassandra_local_dc

    def prepare(self, cql: str) -> PreparedStatement:
        try:
            statement = self._session.prepare(cql)
        except DriverException as error:
            raise DependencyUnavailable(
                f"cannot prepare {cql.split('(', maxsplit=1)[0].strip()!r}: {error}; apply the "
                "schema with checkout-schema"
            ) from error
        # The level comes from the execution profile (read or write, main or fallback),
        # so none is pinned on the statement.
        statement.consistency_level = None
        statement.is_idempotent = True
        return statement

    async def _run(self, statement: Any, params: Sequence[Any] | None, profile: str) -> list[Any]:
        return await _bridge(
            self._session.execute_async(statement, params, execution_profile=profile)
        )

    def _may_fall_back(self, read: bool, error: Exception, attempt: int) -> bool:
        """Unavailable at once (the coordinator knows the replicas are down); a replica
        timeout once the retry at the main level timed out too."""
        if self._levels[read][1] is None:
            return False
        if isinstance(error, Unavailable):
            return True
        return isinstance(error, ReadTimeout | WriteTimeout) and attempt > 1

    def note_downgrade(
        self, kind: str, table: str, main: str, fallback: str, error: Exception
    ) -> None:
        _count_in_burst(
            metrics.CASSANDRA_DOWNGRADES.labels(kind, table, main, fallback),
            self._downgrade_warning,
            "Cassandra cannot meet %s (%s: %s); %s %s and later statements run at %s "
            "until it can (counted in checkout_cassandra_consistency_downgrades_total; "
            "the previous burst had %d)",
            main,
            type(error).__name__,
            error,
            kind,
            table,
            fallback,
        )

    def failover_dc(self, statement: Any, dc: str) -> str | None:
        """Where to run `statement` when no node of `dc` is up: checkout.domain.failover_dc
        over its keyspace's replication, as the driver's metadata has it."""
        keyspace = getattr(statement, "keyspace", None) or self._settings.cassandra_keyspace
        meta = self._cluster.metadata.keyspaces.get(keyspace)
        strategy = getattr(meta, "replication_strategy", None)
        factors = getattr(strategy, "dc_replication_factors", None)
        hosts = self._cluster.metadata.all_hosts()
        up = {host.datacenter for host in hosts if host.is_up is not False}
        return None if dc in up else failover_dc(dc, factors or {}, up)

    def note_failover(self, kind: str, table: str, dc: str, other: str) -> None:
        _count_in_burst(
            metrics.CASSANDRA_DC_FAILOVERS.labels(kind, table, dc, other),
            self._failover_warning,
            "no node of Cassandra DC %s is up; %s %s and later statements for it run in "
            "DC %s until one is (counted in checkout_cassandra_dc_failovers_total; the "
            "previous burst had %d)",
            dc,
            kind,
            table,
            other,
        )

    async def execute(
        self,
        statement: PreparedStatement,
        params: Sequence[Any],
        *,
        dc: str | None = None,
        attempts: int | None = None,
    ) -> list[Any]:
        """Run one statement in `dc` (default: the local DC), retrying transient failures.

        When the main consistency level cannot be met (Unavailable, or a replica timeout
        twice in a row), the same statement is run again at the fallback level. That is
        safe because every statement here is idempotent: an upsert of immutable rows
        keyed by invoice id (or cart, movement), so running it twice writes the same cells
        with the same values; a sale cannot be duplicated by it. The write reaches at
        least the fallback level's replicas now; the coordinator keeps a hint for the
        replica that is down and replays it when it comes back, and repair covers a
        hint that expired. Reads at the fallback level may miss a write that reached
        only the other replica, which is the availability-over-consistency trade.

        Returns the first page of rows: every async query here reads one partition of a
        handful of rows; bulk reads (analytics) page synchronously instead.
        """
        kind, table = statement_kind(statement.query_string)
        return await self._execute(
            statement, params, kind=kind, table=table, dc=dc, attempts=attempts
        )

    async def execute_batch(
        self,
        statement: PreparedStatement,
        rows: Sequence[Sequence[Any]],
        *,
        dc: str | None = None,
    ) -> None:
        """Write rows of ONE partition in one request (an unlogged single-partition batch
        is applied atomically and costs one mutation per replica)."""
        if len(rows) == 1:
            await self.execute(statement, rows[0], dc=dc)
            return
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        for params in rows:
            batch.add(statement, params)
        batch.is_idempotent = True
        kind, table = statement_kind(statement.query_string)
        await self._execute(batch, None, kind=kind, table=table, dc=dc, attempts=None)

    async def _execute(
        self,
        statement: Any,
        params: Sequence[Any] | None,
        *,
        kind: str,
        table: str,
        dc: str | None,
        attempts: int | None,
    ) -> list[Any]:
        dc = dc or self.local_dc
        attempts = attempts or self._settings.cassandra_write_attempts
        for attempt in range(1, attempts + 1):
            try:
                try:
                    return await self._at_level(
                        statement, params, kind=kind, table=table, dc=dc, attempt=attempt
                    )
                except NoHostAvailable as error:
                    # No error per host: the query plan was empty, no node of dc is up.
                    other = None if error.errors else self.failover_dc(statement, dc)
                    if other is None:
                        raise
                    self.note_failover(kind, table, dc, other)
                    return await self._at_level(
                        statement, params, kind=kind, table=table, dc=other, attempt=attempt
                    )
            except _TRANSIENT as error:
                if attempt == attempts:
                    raise DependencyUnavailable(
                        f"Cassandra DC {dc} failed {attempts} times on {kind} {table}: {error}; "
                        "check its nodes (nodetool status) and CHECKOUT_CASSANDRA_HOSTS"
                    ) from error
                delay = min(0.05 * 2**attempt, 2.0)
                log.warning(
                    "Cassandra attempt %d/%d failed (%s); retrying in %.2fs",
                    attempt,
                    attempts,
                    error,
                    delay,
                )
                await asyncio.sleep(delay)
            except DriverException as error:
                raise RequestRejected(f"Cassandra refused the request: {error}") from error
        raise AssertionError("unreachable")

    async def _at_level(
        self,
        statement: Any,
        params: Sequence[Any] | None,
        *,
        kind: str,
        table: str,
        dc: str,
        attempt: int,
    ) -> list[Any]:
        """Run in `dc` at the main level, or at the fallback level when that cannot be met."""
        read = kind == "select"
        try:
            return await self._run(statement, params, profile_name(dc, read, False))
        except (Unavailable, ReadTimeout, WriteTimeout, NoHostAvailable) as error:
            cause = _level_not_met(error)
            if cause is None or not self._may_fall_back(read, cause, attempt):
                raise
            main, fallback = self._levels[read]
            self.note_downgrade(kind, table, main, str(fallback), cause)
            return await self._run(statement, params, profile_name(dc, read, True))

    def read_all(self, statement: PreparedStatement, params: Sequence[Any]) -> Iterable[Any]:
        """Synchronous paged read for bulk scans (analytics, the stock fold)."""
        statement.fetch_size = 1000
        try:
            result: Iterable[Any] = self._session.execute(
                statement, params, execution_profile=profile_name(self.local_dc, True, False)
            )
        except (*_TRANSIENT, DriverException) as error:
            raise DependencyUnavailable(
                f"reading from {_where(self._settings)}: {error}"
            ) from error
        return result

    def ready(self) -> None:
        """Ready while some node is up: with the local DC down, statements fail over."""
        if not any(h.is_up for h in self._cluster.metadata.all_hosts()):
            raise DependencyUnavailable(f"no node of {_where(self._settings)} is up")

    def close(self) -> None:
        self._cluster.shutdown()


def _level_not_met(error: BaseException) -> Exception | None:
    """The replica-side failure behind `error`, if that is what it is.

    The driver's default retry policy retries an Unavailable once on the next host of the
    query plan; when the plan has no other host (the local DC's only other node is the
    one down) the error arrives as NoHostAvailable holding one Unavailable per host."""
    replica_side = (Unavailable, ReadTimeout, WriteTimeout)
    causes: list[BaseException] = [error]
    if isinstance(error, NoHostAvailable):
        causes = list((error.errors or {}).values())
    found = [cause for cause in causes if isinstance(cause, replica_side)]
    if found and len(found) == len(causes):
        first: Exception = found[0]
        return first
    return None


def _bridge(response_future: Any) -> asyncio.Future[list[Any]]:
    """Resolve an asyncio future from the driver's I/O thread, without blocking the loop."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[list[Any]] = loop.create_future()

    def resolve(rows: Any) -> None:
        if not future.done():
            future.set_result(list(rows) if rows is not None else [])

    def fail(error: BaseException) -> None:
        if not future.done():
            future.set_exception(error)

    response_future.add_callbacks(
        lambda rows: loop.call_soon_threadsafe(resolve, rows),
        lambda error: loop.call_soon_threadsafe(fail, error),
    )
    return future


def insert_cql(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
