"""The reservation store: every SQL statement of the gateway lives here.

A reservation row moves through a small state machine::

    (none) --reserve--> pending(attempt 1) --record--> started
                         |  ^
                         |  +--take over (lease expired): attempt + 1
                         +--release--> (none)

Every write made after a forward names the attempt that made it. A stale attempt
matches no row, so it can neither overwrite a newer attempt's record nor delete
its reservation. Lease arithmetic uses the database clock, so replicas with
skewed clocks still agree on when a lease has expired.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import datetime
import logging
import select
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import psycopg_pool
from psycopg.rows import class_row

from gateway.errors import DatabaseUnavailable
from gateway.start_request import ReservationIdentity

log = logging.getLogger(__name__)

PENDING = "pending"
STARTED = "started"

# the table keeps "no tenant" as '' so that the identity is a plain unique key
NO_TENANT = ""

_IDENTITY = (
    "caller = %(caller)s AND engine_name = %(engine_name)s"
    " AND tenant_id = %(tenant_id)s"
    " AND process_definition_key = %(process_definition_key)s"
    " AND business_key = %(business_key)s"
)
# what one attempt's writes match: the identity, this reservation of it (a
# released identity can be reserved again, from attempt 1) and the attempt
_OWNED = (
    f"{_IDENTITY} AND reservation_id IS NOT DISTINCT FROM %(reservation_id)s"
    " AND attempt = %(attempt)s AND state = 'pending'"
)
_COLUMNS = (
    "reservation_id, state, fingerprint, attempt, process_instance_id, response,"
    " extract(epoch FROM lease_expires_at - now())::float8 AS lease_remaining"
)

# one round trip: insert the pending row, or read the one that is already there
_RESERVE = f"""
WITH inserted AS (
    INSERT INTO reservations (caller, engine_name, tenant_id, process_definition_key,
        business_key, state, fingerprint, start_path, request_body, attempt,
        lease_expires_at)
    VALUES (%(caller)s, %(engine_name)s, %(tenant_id)s, %(process_definition_key)s,
        %(business_key)s, 'pending', %(fingerprint)s, %(start_path)s,
        %(request_body)s, 1, now() + make_interval(secs => %(lease)s))
    ON CONFLICT ON CONSTRAINT reservations_identity_key DO NOTHING
    RETURNING {_COLUMNS}, true AS created
)
SELECT * FROM inserted
UNION ALL
SELECT {_COLUMNS}, false AS created FROM reservations
WHERE {_IDENTITY} AND NOT EXISTS (SELECT 1 FROM inserted)
"""  # noqa: S608 -- fragments are constants, values are bound parameters

_FIND = f"SELECT {_COLUMNS}, false AS created FROM reservations WHERE {_IDENTITY}"  # noqa: S608

# The record commits without waiting for its WAL flush (synchronous_commit off
# for this one transaction). That is safe: if a database crash loses it, the row
# is pending again with a lease that runs out, and the next request or the
# reconciler finds the instance in the engine and adopts it. The reservation
# itself, and a release, always wait for the flush.
_RECORD = f"""
WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true))
UPDATE reservations
SET state = 'started', process_instance_id = %(process_instance_id)s,
    response = %(response)s, lease_expires_at = NULL, updated_at = now()
WHERE {_OWNED} AND EXISTS (SELECT FROM relaxed)
"""  # noqa: S608

_RELEASE = f"DELETE FROM reservations WHERE {_OWNED}"  # noqa: S608

_TAKE_OVER = f"""
UPDATE reservations
SET attempt = attempt + 1, lease_expires_at = now() + make_interval(secs => %(lease)s),
    updated_at = now()
WHERE {_OWNED} AND lease_expires_at <= now()
RETURNING attempt
"""  # noqa: S608

# a taken-over start may forward only while its attempt still owns the row: the
# lookup before the forward can outlast the lease, and a newer attempt may have
# taken the row over meanwhile and forwarded the start itself
_RENEW_LEASE = f"""
UPDATE reservations
SET lease_expires_at = now() + make_interval(secs => %(lease)s), updated_at = now()
WHERE {_OWNED}
"""  # noqa: S608

# claim a batch of rows whose lease had expired by the given time (by default,
# now); SKIP LOCKED lets several reconcilers share the work, and a pass names
# the time it began, so rows that expire again while it runs wait for the next
_CLAIM_EXPIRED = """
UPDATE reservations AS r
SET attempt = r.attempt + 1,
    lease_expires_at = now() + make_interval(secs => %(lease)s), updated_at = now()
FROM (
    SELECT caller, engine_name, tenant_id, process_definition_key, business_key
    FROM reservations
    WHERE state = 'pending'
        AND lease_expires_at <= coalesce(%(expired_by)s::timestamptz, now())
    ORDER BY lease_expires_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
) AS expired
WHERE r.caller = expired.caller AND r.engine_name = expired.engine_name
    AND r.tenant_id = expired.tenant_id
    AND r.process_definition_key = expired.process_definition_key
    AND r.business_key = expired.business_key
RETURNING r.caller, r.engine_name, r.tenant_id, r.process_definition_key,
    r.business_key, r.reservation_id,
    r.attempt, r.fingerprint, r.start_path, r.request_body
"""

# only started rows are purged, as a pending row is the reconciler's to settle;
# make_interval's days are whole days only, so the age goes in as seconds
_PURGE = """
DELETE FROM reservations
WHERE state = 'started'
    AND created_at < now() - make_interval(secs => %(days)s * 86400)
"""

# the instances that other callers' reservations of the same identity recorded;
# `caller <> ''` lets the planner use the partial index on those rows
_RECORDED_BY_OTHER_CALLERS = """
SELECT process_instance_id FROM reservations
WHERE caller <> '' AND caller <> %(caller)s AND business_key = %(business_key)s
    AND engine_name = %(engine_name)s AND tenant_id = %(tenant_id)s
    AND process_definition_key = %(process_definition_key)s
    AND process_instance_id = ANY(%(instance_ids)s)
"""

_NOW = "SELECT now()"

_COUNT_PENDING = "SELECT count(*) FROM reservations WHERE state = 'pending'"

_SCHEMA_REVISION = "SELECT version_num FROM alembic_version"


@dataclasses.dataclass(frozen=True)
class Reservation:
    """One row of the reservations table, as the start logic sees it."""

    reservation_id: uuid.UUID | None
    state: str
    fingerprint: bytes
    attempt: int
    process_instance_id: str | None
    response: bytes | None
    lease_remaining: float | None
    created: bool

    @property
    def is_started(self) -> bool:
        """Tell whether the instance is recorded."""
        return self.state == STARTED

    @property
    def lease_expired(self) -> bool:
        """Tell whether a pending row's lease has run out."""
        return self.state == PENDING and (self.lease_remaining or 0.0) <= 0.0


@dataclasses.dataclass(frozen=True)
class PendingStart:
    """What a new reservation keeps of its start, to forward it again if needed."""

    fingerprint: bytes
    start_path: str
    body: bytes


@dataclasses.dataclass(frozen=True)
class ClaimedReservation:
    """An expired pending row that a reconciler now owns at a new attempt."""

    identity: ReservationIdentity
    reservation_id: uuid.UUID | None
    attempt: int
    start: PendingStart


_ROW = class_row(Reservation)


class ReservationStore:
    """Reserve, record and release starts in PostgreSQL."""

    def __init__(self, database_url: str, pool_size: int, pool_timeout: float) -> None:
        self.pool_timeout = pool_timeout
        self.pool = psycopg_pool.ConnectionPool(
            database_url,
            min_size=1,
            max_size=pool_size,
            timeout=pool_timeout,
            # every statement is its own transaction: a reservation is committed
            # by the time reserve() returns, before anything reaches the engine
            kwargs={"autocommit": True, "connect_timeout": 3},
            open=False,
            name="reservations",
            check=_check_connection,
        )
        # the connection that the current start holds, if it holds one
        self._held: contextvars.ContextVar[_Held | None] = contextvars.ContextVar(
            f"held_connection_{id(self)}", default=None
        )

    def open(self) -> None:
        """Open the pool without waiting, as the database may be down."""
        self.pool.open(wait=False)

    def close(self) -> None:
        """Close every connection of the pool."""
        self.pool.close()

    @contextlib.contextmanager
    def holding_connection(self) -> Iterator[None]:
        """Run every statement of the block on one pooled connection.

        A start reserves, forwards and records; taking the connection once saves
        a pool checkout per statement. It is taken at the first statement.
        """
        held = _Held()
        token = self._held.set(held)
        try:
            yield
        finally:
            self._held.reset(token)
            if held.conn is not None:
                self.pool.putconn(held.conn)

    def hand_back_connection(self) -> None:
        """Return the held connection to the pool; the next statement takes one."""
        held = self._held.get()
        if held is not None and held.conn is not None:
            self.pool.putconn(held.conn)
            held.conn = None

    def reserve(
        self, identity: ReservationIdentity, start: PendingStart, lease: float
    ) -> Reservation:
        """Insert a pending reservation, or return the row holding the identity."""
        params = {
            **_identity_params(identity),
            "fingerprint": start.fingerprint,
            "start_path": start.start_path,
            "request_body": start.body,
            "lease": lease,
        }
        row = self._fetch(_RESERVE, params)
        if row is not None:
            return row

        # the conflicting row was committed after this statement's snapshot was
        # taken, so the same statement could not read it; a second one can
        existing = self.find(identity)
        if existing is None:
            # ...unless it was released in between, which makes a retry worthwhile
            return self.reserve(identity, start, lease)
        return existing

    def find(self, identity: ReservationIdentity) -> Reservation | None:
        """Return the reservation that holds the identity, if any."""
        return self._fetch(_FIND, {**_identity_params(identity)})

    def record_started(
        self,
        identity: ReservationIdentity,
        reservation_id: uuid.UUID | None,
        attempt: int,
        process_instance_id: str,
        response: bytes,
    ) -> bool:
        """Record the started instance; False if the attempt lost the row."""
        params = {
            **_owned_params(identity, reservation_id, attempt),
            "process_instance_id": process_instance_id,
            "response": response,
        }
        return self._execute(_RECORD, params)[0] == 1

    def release(
        self,
        identity: ReservationIdentity,
        reservation_id: uuid.UUID | None,
        attempt: int,
    ) -> bool:
        """Delete a pending reservation; False if the attempt lost the row."""
        params = _owned_params(identity, reservation_id, attempt)
        return self._execute(_RELEASE, params)[0] == 1

    def take_over(
        self,
        identity: ReservationIdentity,
        reservation_id: uuid.UUID | None,
        attempt: int,
        lease: float,
    ) -> int | None:
        """Claim an expired pending row with attempt + 1; return the new attempt."""
        params = {**_owned_params(identity, reservation_id, attempt), "lease": lease}
        row = self._execute(_TAKE_OVER, params)[1]
        return None if row is None else int(row[0])

    def renew_lease(
        self,
        identity: ReservationIdentity,
        reservation_id: uuid.UUID | None,
        attempt: int,
        lease: float,
    ) -> bool:
        """Give the attempt a fresh lease; False if it no longer owns the row."""
        params = {**_owned_params(identity, reservation_id, attempt), "lease": lease}
        return self._execute(_RENEW_LEASE, params)[0] == 1

    def claim_expired(
        self, limit: int, lease: float, expired_by: datetime.datetime | None = None
    ) -> list[ClaimedReservation]:
        """Take over up to `limit` rows that expired by `expired_by` (or by now)."""
        params = {"limit": limit, "lease": lease, "expired_by": expired_by}
        with self._connection() as conn:
            rows = conn.execute(_CLAIM_EXPIRED, params).fetchall()
        return [_claimed(row) for row in rows]

    def database_now(self) -> datetime.datetime:
        """Return the database's clock, which every lease is measured by."""
        row = self._execute(_NOW, {})[1]
        assert row is not None
        now: datetime.datetime = row[0]
        return now

    def recorded_by_other_callers(
        self, identity: ReservationIdentity, instance_ids: list[str]
    ) -> set[str]:
        """Return which of the instances other callers have recorded for the key."""
        params = {**_identity_params(identity), "instance_ids": instance_ids}
        with self._connection() as conn:
            rows = conn.execute(_RECORDED_BY_OTHER_CALLERS, params).fetchall()
        return {str(row[0]) for row in rows}

    def purge(self, older_than_days: float) -> int:
        """Delete started reservations older than the given number of days."""
        return self._execute(_PURGE, {"days": older_than_days})[0]

    def count_pending(self) -> int:
        """Return how many reservations are pending."""
        row = self._execute(_COUNT_PENDING, {})[1]
        return 0 if row is None else int(row[0])

    def schema_revision(self) -> str | None:
        """Return the alembic revision that the database is at."""
        try:
            row = self._execute(_SCHEMA_REVISION, {})[1]
        except psycopg.errors.UndefinedTable:
            return None
        return None if row is None else str(row[0])

    def _fetch(self, sql: str, params: dict[str, object]) -> Reservation | None:
        with self._connection() as conn, conn.cursor(row_factory=_ROW) as cur:
            cur.execute(sql, params)
            return cur.fetchone()

    def _execute(
        self, sql: str, params: dict[str, object]
    ) -> tuple[int, tuple[Any, ...] | None]:
        """Run a statement; return its row count and first row, if any."""
        with self._connection() as conn:
            cur = conn.execute(sql, params)
            row = cur.fetchone() if cur.description is not None else None
            return cur.rowcount, row

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        # translate the driver's failures into the gateway's one error for them
        try:
            held = self._held.get()
            if held is None:
                with self.pool.connection() as conn:
                    yield conn
            else:
                yield self._held_connection(held)
        except psycopg_pool.PoolTimeout as exc:
            log.warning("no database connection within %.1fs", self.pool_timeout)
            raise _unavailable() from exc
        except psycopg.OperationalError as exc:
            log.warning("database connection failed: %s", exc)
            raise _unavailable() from exc

    def _held_connection(self, held: _Held) -> psycopg.Connection[Any]:
        """Return the held connection, taking a fresh one if it broke."""
        if held.conn is not None and held.conn.broken:
            self.pool.putconn(held.conn)
            held.conn = None
        if held.conn is None:
            held.conn = self.pool.getconn()
        return held.conn


class _Held:
    """The connection that one start has taken from the pool, once it has one."""

    conn: psycopg.Connection[Any] | None = None


def _check_connection(conn: psycopg.Connection[Any]) -> None:
    """Check a connection as it leaves the pool, with a round trip only if needed.

    An idle connection has nothing to read. When its socket is readable, the
    server has closed it (it restarted) or sent a notice, and only then does a
    real query tell which. A dead connection fails the check and the pool
    replaces it, so a database restart fails no request that starts after it.

    Limitation: a server that vanished without closing its sockets (a host
    that lost power) looks alive here, and each of its connections fails one
    statement with a 503 before the pool replaces it.
    """
    poller = select.poll()
    poller.register(conn.pgconn.socket, select.POLLIN)
    if poller.poll(0):
        psycopg_pool.ConnectionPool.check_connection(conn)


def _unavailable() -> DatabaseUnavailable:
    return DatabaseUnavailable("the reservation database is unavailable", retry_after=1)


def _claimed(row: tuple[Any, ...]) -> ClaimedReservation:
    caller, engine_name, tenant, key, business_key, reservation_id = row[:6]
    attempt, fingerprint, path, body = row[6:]
    identity = ReservationIdentity(
        engine_name, tenant or None, key, business_key, caller
    )
    start = PendingStart(fingerprint, path, body)
    return ClaimedReservation(identity, reservation_id, attempt, start)


def _owned_params(
    identity: ReservationIdentity, reservation_id: uuid.UUID | None, attempt: int
) -> dict[str, object]:
    return {
        **_identity_params(identity),
        "reservation_id": reservation_id,
        "attempt": attempt,
    }


def _identity_params(identity: ReservationIdentity) -> dict[str, str]:
    return {
        "caller": identity.caller,
        "engine_name": identity.engine_name,
        "tenant_id": identity.tenant_id or NO_TENANT,
        "process_definition_key": identity.process_definition_key,
        "business_key": identity.business_key,
    }
