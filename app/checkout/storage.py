"""Cassandra access: session factory, asyncio bridge with retries, and the stores.

Routing is token-aware over a DC-aware round robin pinned to the local DC, so each
request goes straight to a replica in this region. Every statement is prepared and
idempotent (immutable rows keyed by invoice, cart or key), which is what makes retrying
a timed-out write on another node safe: the worst case is writing the same row twice.

Consistency levels live in execution profiles, not on the statements: one profile for
writes and one for reads at CHECKOUT_CASSANDRA_CONSISTENCY, and two more at
CHECKOUT_CASSANDRA_FALLBACK_CONSISTENCY that a statement is re-run under when the main
level cannot be met (see Cassandra.execute).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from datetime import UTC, date
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from cassandra import (
    ConsistencyLevel,
    CoordinationFailure,
    DriverException,
    OperationTimedOut,
    ReadTimeout,
    Unavailable,
    WriteTimeout,
)
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
from cassandra.policies import (
    ConstantSpeculativeExecutionPolicy,
    DCAwareRoundRobinPolicy,
    TokenAwarePolicy,
)
from cassandra.protocol import ErrorMessage
from cassandra.query import PreparedStatement

from checkout import metrics
from checkout.cart import Cart, CartStatus
from checkout.config import Settings
from checkout.cql import SALES_TTL_SECONDS
from checkout.domain import Branch, PaymentMethod
from checkout.errors import DependencyUnavailable, RequestRejected
from checkout.events import SALE_COLUMNS, SaleEvent, sale_rows
from checkout.idempotency import IdempotencyRecord, IdempotencyStatus
from checkout.inventory import StockLevel, StockMovement, movements_for_sale
from checkout.payments import ChargeOutcome, ChargeRequest, ChargeResult, StoredCharge

log = logging.getLogger(__name__)

# Protocol v5 CAS_WRITE_UNKNOWN, which driver 3.30 raises as a bare ErrorMessage.
_CAS_WRITE_UNKNOWN = 0x1700


class CasOutcomeUnknown(Exception):
    """A lightweight transaction's proposal reached some replicas but not a quorum: it
    may still win. Running it again makes Paxos finish it and answer with the outcome."""


# Worth another try on another replica: the node was slow, down or overloaded.
_TRANSIENT = (
    CasOutcomeUnknown,
    OperationTimedOut,
    ReadTimeout,
    WriteTimeout,
    Unavailable,
    CoordinationFailure,
    NoHostAvailable,
)
_MOVE_CQL = (
    "INSERT INTO stock_movements (branch, product_id, invoice_id, delta, moved_at) "
    "VALUES (?, ?, ?, ?, ?)"
)
_SALE_TABLES = ("sales_by_branch_day", "sales_by_invoice", "sales_by_product_line_day")


# Execution profiles: the main level and the fallback level, for writes and for reads.
PROFILE_READ = "read"
PROFILE_FALLBACK_WRITE = "fallback-write"
PROFILE_FALLBACK_READ = "fallback-read"
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


def statement_kind(cql: str) -> tuple[str, str]:
    """('insert', 'sales_by_invoice') for metrics labels; ('other', '') if unknown."""
    match = _STATEMENT_RE.match(cql)
    if match is None:
        return "other", ""
    kind = next(group for group in match.groups()[:3] if group)
    return kind.lower(), match.group(4).split(".")[-1]


def _is_read(statement: Any) -> bool:
    return statement_kind(statement.query_string)[0] == "select"


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


def _where(settings: Settings) -> str:
    hosts = ",".join(settings.cassandra_hosts)
    return (
        f"Cassandra at {hosts}:{settings.cassandra_port} (local DC {settings.cassandra_local_dc})"
    )


def connect_cluster(
    settings: Settings, *, keyspace: str | None, schema_agreement_wait_s: int = 10
) -> tuple[Any, Any]:
    """Open a cluster and session, or raise DependencyUnavailable saying what to check."""

    def profile(level: int) -> ExecutionProfile:
        return ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(
                DCAwareRoundRobinPolicy(local_dc=settings.cassandra_local_dc)
            ),
            consistency_level=level,
            serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
            request_timeout=settings.cassandra_request_timeout_s,
            # A slow replica (GC pause, dying node) is raced by a second one after 200 ms;
            # only idempotent statements are ever speculated.
            speculative_execution_policy=ConstantSpeculativeExecutionPolicy(0.2, 1),
        )

    (write, write_fallback), (read, read_fallback) = levels(settings).values()
    profiles = {
        EXEC_PROFILE_DEFAULT: profile(consistency(write)),
        PROFILE_READ: profile(consistency(read)),
    }
    if write_fallback is not None:
        profiles[PROFILE_FALLBACK_WRITE] = profile(consistency(write_fallback))
    if read_fallback is not None:
        profiles[PROFILE_FALLBACK_READ] = profile(consistency(read_fallback))
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
    dcs = sorted({host.datacenter for host in cluster.metadata.all_hosts() if host.datacenter})
    if settings.cassandra_local_dc not in dcs:
        cluster.shutdown()
        raise DependencyUnavailable(
            f"CHECKOUT_CASSANDRA_LOCAL_DC={settings.cassandra_local_dc!r} is not a data center "
            f"of the cluster at {','.join(settings.cassandra_hosts)} (it has {dcs})"
        )
    return cluster, session


class Cassandra:
    """A connected session with prepared statements and an asyncio bridge."""

    def __init__(self, settings: Settings, *, connect: Any = connect_cluster) -> None:
        self._settings = settings
        self._cluster, self._session = connect(settings, keyspace=settings.cassandra_keyspace)
        self._levels = levels(settings)
        self._downgrade_warning = BurstWarning()

    def prepare(self, cql: str) -> PreparedStatement:
        try:
            statement = self._session.prepare(cql)
        except DriverException as error:
            raise DependencyUnavailable(
                f"cannot prepare {cql.split('(', maxsplit=1)[0].strip()!r} in keyspace "
                f"{self._settings.cassandra_keyspace}: {error}; apply the schema with "
                "checkout-schema"
            ) from error
        # The level comes from the execution profile (read or write, main or fallback),
        # so none is pinned on the statement.
        statement.consistency_level = None
        statement.is_idempotent = True
        return statement

    def _profile(self, statement: PreparedStatement, *, fallback: bool) -> str:
        read = _is_read(statement)
        if fallback:
            return PROFILE_FALLBACK_READ if read else PROFILE_FALLBACK_WRITE
        return PROFILE_READ if read else EXEC_PROFILE_DEFAULT

    async def _run(
        self, statement: PreparedStatement, params: Sequence[Any], *, fallback: bool = False
    ) -> list[Any]:
        profile = self._profile(statement, fallback=fallback)
        try:
            return await _bridge(
                self._session.execute_async(statement, params, execution_profile=profile)
            )
        except ErrorMessage as error:
            if getattr(error, "code", None) == _CAS_WRITE_UNKNOWN:
                raise CasOutcomeUnknown(str(error)) from error
            raise

    def _may_fall_back(self, statement: PreparedStatement, error: Exception, attempt: int) -> bool:
        """Unavailable at once (the coordinator knows the replicas are down); a replica
        timeout once the retry at the main level timed out too. Never a lightweight
        transaction (its Paxos round needs a serial quorum whatever the level)."""
        if self._levels[_is_read(statement)][1] is None:
            return False
        if " IF " in statement.query_string.upper():
            return False
        if isinstance(error, Unavailable):
            return True
        return isinstance(error, ReadTimeout | WriteTimeout) and attempt > 1

    @property
    def write_fallback(self) -> str | None:
        return self._levels[False][1]

    def _note_downgrade(self, statement: PreparedStatement, error: Exception) -> None:
        main, fallback = self._levels[_is_read(statement)]
        kind, table = statement_kind(statement.query_string)
        self.note_downgrade(kind, table, main, str(fallback), error)

    def note_downgrade(
        self, kind: str, table: str, main: str, fallback: str, error: Exception
    ) -> None:
        metrics.CASSANDRA_DOWNGRADES.labels(kind, table, main, fallback).inc()
        previous = self._downgrade_warning.note()
        if previous is not None:
            log.warning(
                "Cassandra cannot meet %s (%s: %s); %s %s and later statements run at %s "
                "until it can (counted in checkout_cassandra_consistency_downgrades_total; "
                "the previous burst had %d)",
                main,
                type(error).__name__,
                error,
                kind,
                table,
                fallback,
                previous,
            )

    async def execute(
        self, statement: PreparedStatement, params: Sequence[Any], *, attempts: int | None = None
    ) -> list[Any]:
        """Run one statement, retrying transient failures with backoff.

        When the main consistency level cannot be met (Unavailable, or a replica timeout
        twice in a row), the same statement is run again at the fallback level. That is
        safe because every statement here is idempotent: an upsert of immutable rows
        keyed by invoice id (or cart id, key), so running it twice writes the same cells
        with the same values; a sale cannot be duplicated by it. The write reaches at
        least the fallback level's replicas now; the coordinator keeps a hint for the
        replica that is down and replays it when it comes back, and repair covers a
        hint that expired. Reads at the fallback level may miss a write that reached
        only the other replica, which is the availability-over-consistency trade.

        Returns the first page of rows: every async query here reads one partition of a
        handful of rows; bulk reads (analytics) page synchronously instead.
        """
        attempts = attempts or self._settings.cassandra_write_attempts
        for attempt in range(1, attempts + 1):
            try:
                try:
                    return await self._run(statement, params)
                except (Unavailable, ReadTimeout, WriteTimeout, NoHostAvailable) as error:
                    cause = _level_not_met(error)
                    if cause is None or not self._may_fall_back(statement, cause, attempt):
                        raise
                    self._note_downgrade(statement, cause)
                    return await self._run(statement, params, fallback=True)
            except _TRANSIENT as error:
                if attempt == attempts:
                    raise DependencyUnavailable(
                        f"{_where(self._settings)} failed {attempts} times: {error}; check the "
                        "nodes of the local DC (nodetool status) and CHECKOUT_CASSANDRA_HOSTS"
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

    def read_all(self, statement: PreparedStatement, params: Sequence[Any]) -> Iterable[Any]:
        """Synchronous paged read for bulk scans (analytics): rows arrive page by page."""
        statement.fetch_size = 1000
        try:
            result: Iterable[Any] = self._session.execute(
                statement, params, execution_profile=self._profile(statement, fallback=False)
            )
        except (*_TRANSIENT, DriverException) as error:
            raise DependencyUnavailable(
                f"reading from {_where(self._settings)}: {error}"
            ) from error
        return result

    def ready(self) -> None:
        up = [h for h in self._cluster.metadata.all_hosts() if h.is_up]
        local = [h for h in up if h.datacenter == self._settings.cassandra_local_dc]
        if not local:
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


class _KeyedRows:
    """A table whose rows are read and written whole by their key (the first column):
    one prepared single-row SELECT and one full-row INSERT, built from one column list."""

    def __init__(self, db: Cassandra, table: str, columns: Sequence[str]) -> None:
        self._db = db
        self.insert = insert_cql(table, columns)
        self._get = db.prepare(f"SELECT {', '.join(columns)} FROM {table} WHERE {columns[0]} = ?")
        self._put = db.prepare(self.insert)

    async def get(self, key: str) -> Any | None:
        rows = await self._db.execute(self._get, (key,))
        return rows[0] if rows else None

    async def put(self, values: Sequence[Any]) -> None:
        await self._db.execute(self._put, values)


class CassandraCartStore:
    def __init__(self, db: Cassandra) -> None:
        self._rows = _KeyedRows(
            db, "carts", ("cart_id", "branch", "items", "status", "invoice_id", "created_at")
        )

    async def get(self, cart_id: str) -> Cart | None:
        row = await self._rows.get(cart_id)
        if row is None:
            return None
        return Cart(
            cart_id=row.cart_id,
            branch=Branch(row.branch),
            created_at=row.created_at,
            items=MappingProxyType(dict(row.items or {})),
            status=CartStatus(row.status),
            invoice_id=row.invoice_id,
        )

    async def save(self, cart: Cart) -> None:
        c = cart
        await self._rows.put(
            (c.cart_id, c.branch.value, dict(c.items), c.status.value, c.invoice_id, c.created_at)
        )


class CassandraIdempotencyStore:
    def __init__(self, db: Cassandra) -> None:
        self._rows = _KeyedRows(
            db,
            "idempotency_keys",
            ("key", "request_hash", "invoice_id", "status", "created_at", "response_status",
             "response_body"),
        )  # fmt: skip

    async def get(self, key: str) -> IdempotencyRecord | None:
        row = await self._rows.get(key)
        if row is None:
            return None
        return IdempotencyRecord(
            key=row.key,
            request_hash=row.request_hash,
            invoice_id=row.invoice_id,
            status=IdempotencyStatus(row.status),
            created_at=row.created_at,
            response_status=row.response_status,
            response_body=row.response_body,
        )

    async def put(self, record: IdempotencyRecord) -> None:
        r = record
        await self._rows.put(
            (r.key, r.request_hash, r.invoice_id, r.status.value, r.created_at,
             r.response_status, r.response_body)
        )  # fmt: skip


class CassandraChargeLedger:
    """The sandbox gateway's charges (payments.ChargeLedger), shared by every API node.

    A charge is claimed with INSERT ... IF NOT EXISTS. The race it settles is real: a
    client that gives up on a slow checkout and retries the key on another API node makes
    two gateways decide the same key at once; without the claim both answers would stand,
    with two approval times, i.e. two sale events with different sold_at for one invoice
    (a duplicate sale in the time-keyed tables). With it, the second claim finds the first
    and answers with it. The cost is one Paxos round per charge, next to an ~80 ms
    gateway call.

    Serial level SERIAL, not LOCAL_SERIAL: the retry that races is typically sent to
    another region's API (tests/integration/test_app_checkout.py does exactly that), and
    LOCAL_SERIAL runs an independent Paxos per DC, so both regions' claims would win. A
    SERIAL quorum (4 of the lab's 6 replicas) also survives one node down, where
    LOCAL_SERIAL with RF 2 would not; the price is cross-region round trips per charge.

    A claim that times out (contention, a slow replica) is tried once more: Paxos then
    finishes the other proposal and answers with the charge that stands. When no serial
    quorum is alive (Unavailable) the ledger reads the key and, if nothing is there,
    writes the charge with a plain upsert (counted as a downgrade from SERIAL): during
    such an outage the cross-node race is open again, last write wins; availability is
    chosen over that corner case.
    """

    def __init__(self, db: Cassandra) -> None:
        self._db = db
        self._rows = _KeyedRows(
            db,
            "sandbox_charges",
            ("key", "amount", "method", "reference", "charge_id", "outcome", "decided_at",
             "reason"),
        )  # fmt: skip
        self._claim = db.prepare(f"{self._rows.insert} IF NOT EXISTS")
        self._claim.serial_consistency_level = ConsistencyLevel.SERIAL
        self._void = db.prepare("DELETE FROM sandbox_charges WHERE key = ?")

    async def get(self, key: str) -> StoredCharge | None:
        row = await self._rows.get(key)
        return None if row is None else _stored_charge(row)

    async def claim(self, charge: StoredCharge) -> StoredCharge:
        params = _charge_params(charge)
        try:
            rows = await self._db.execute(self._claim, params, attempts=2)
        except DependencyUnavailable as error:
            driver_error = error.__cause__
            cause = _level_not_met(driver_error) if isinstance(driver_error, Exception) else None
            fallback = self._db.write_fallback
            if not isinstance(cause, Unavailable) or fallback is None:
                raise
            known = await self.get(charge.request.key)
            if known is not None:
                return known
            self._db.note_downgrade("insert", "sandbox_charges", "SERIAL", fallback, cause)
            await self._rows.put(params)
            return charge
        applied = rows[0][0]
        return charge if applied else _stored_charge(rows[0])

    async def void(self, key: str) -> None:
        await self._db.execute(self._void, (key,))


def _charge_params(charge: StoredCharge) -> tuple[Any, ...]:
    request, result = charge.request, charge.result
    return (
        request.key,
        request.amount,
        request.method.value,
        request.reference,
        result.charge_id,
        result.outcome.value,
        result.decided_at,
        result.reason,
    )


def _stored_charge(row: Any) -> StoredCharge:
    # The driver returns timestamps as naive UTC datetimes.
    decided_at = row.decided_at.replace(tzinfo=UTC)
    return StoredCharge(
        ChargeRequest(row.key, Decimal(row.amount), PaymentMethod(row.method), row.reference),
        ChargeResult(row.charge_id, ChargeOutcome(row.outcome), decided_at, row.reason),
    )


class CassandraStockLedger:
    def __init__(self, db: Cassandra, initial_stock: int) -> None:
        self._db = db
        self._initial_stock = initial_stock
        self._move = db.prepare(_MOVE_CQL)
        self._initial = db.prepare(
            "SELECT level FROM stock_initial WHERE branch = ? AND product_id = ?"
        )
        self._sum = db.prepare(
            "SELECT sum(delta) AS moved FROM stock_movements WHERE branch = ? AND product_id = ?",
        )

    async def record(self, movements: Sequence[StockMovement]) -> None:
        await asyncio.gather(
            *(self._db.execute(self._move, _movement_params(m)) for m in movements)
        )

    async def level(self, branch: Branch, product_id: str) -> StockLevel:
        initial_rows, moved_rows = await asyncio.gather(
            self._db.execute(self._initial, (branch.value, product_id)),
            self._db.execute(self._sum, (branch.value, product_id)),
        )
        initial = initial_rows[0].level if initial_rows else self._initial_stock
        moved = (moved_rows[0].moved if moved_rows else None) or 0
        return StockLevel(branch, product_id, initial + moved)


# How long the writer trusts that it wrote a (branch, day) into the day index. Every sale
# rewrote it before: one write in five, for a row that changes once a day per branch.
# Rewriting it hourly keeps its TTL within an hour of the day's newest sale rows.
DAY_INDEX_REFRESH_S = 3600.0


class CassandraSaleWriter:
    """Writes sale events: all sale tables, the day index, and the stock movements of the
    events whose producer did not store them (replayed rows)."""

    def __init__(
        self,
        db: Cassandra,
        concurrency: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._slots = asyncio.Semaphore(concurrency)
        self._clock = clock
        self._days_written: dict[tuple[str, date], float] = {}
        self._inserts = [
            db.prepare(f"{insert_cql(table, SALE_COLUMNS)} USING TTL {SALES_TTL_SECONDS}")
            for table in _SALE_TABLES
        ]
        self._day = db.prepare(
            f"INSERT INTO sale_days (branch, day) VALUES (?, ?) USING TTL {SALES_TTL_SECONDS}"
        )
        self._move = db.prepare(_MOVE_CQL)

    async def _run(self, statement: PreparedStatement, params: Sequence[Any]) -> None:
        async with self._slots:
            await self._db.execute(statement, params)

    def _day_written_since(self, day: tuple[str, date], since: float) -> bool:
        written = self._days_written.get(day)
        return written is not None and written > since

    async def write(self, events: Sequence[SaleEvent]) -> None:
        """Write every event or raise; a partial write is repaired by writing it again."""
        writes: list[Coroutine[Any, Any, None]] = []
        days: set[tuple[str, date]] = set()
        for event in events:
            rows = sale_rows(event)
            for row in rows:
                params = [row[column] for column in SALE_COLUMNS]
                writes.extend(self._run(insert, params) for insert in self._inserts)
            days.add((event.branch.value, rows[0]["day"]))
            if not event.stock_moved:
                writes.extend(
                    self._run(self._move, _movement_params(m)) for m in movements_for_sale(event)
                )
        now = self._clock()
        stale = sorted(d for d in days if not self._day_written_since(d, now - DAY_INDEX_REFRESH_S))
        writes.extend(self._run(self._day, day) for day in stale)
        await asyncio.gather(*writes)
        # Only once they are stored: a failed batch is written again, day index included.
        self._days_written.update(dict.fromkeys(stale, now))


def _movement_params(movement: StockMovement) -> tuple[Any, ...]:
    m = movement
    return (m.branch.value, m.product_id, m.invoice_id, m.delta, m.moved_at)
