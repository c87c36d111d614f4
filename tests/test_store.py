"""The reservation store against a real PostgreSQL: uniqueness, leases and fencing."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from devenv.ports import wait_until
from gateway.start_request import ReservationIdentity
from gateway.store import PendingStart
from gateway.store import ReservationStore

START = PendingStart(
    b"f" * 32, "/process-definition/key/k/start", b'{"businessKey":"b"}'
)


@pytest.fixture
def store(own_store: ReservationStore) -> ReservationStore:
    # each test gets a database of its own, so claims see only its rows
    return own_store


@pytest.fixture
def identity() -> ReservationIdentity:
    return ReservationIdentity("default", None, "k", f"store-{uuid.uuid4().hex}")


def expire(store: ReservationStore, identity: ReservationIdentity) -> None:
    wait_until(lambda: store.find(identity).lease_expired, 10, "the lease")  # type: ignore[union-attr]


def test_concurrent_reservations_create_one_row(
    store: ReservationStore, identity: ReservationIdentity
) -> None:
    barrier = threading.Barrier(16)

    def reserve(_: int) -> bool:
        barrier.wait()
        return store.reserve(identity, START, 60).created

    with ThreadPoolExecutor(16) as pool:
        created = list(pool.map(reserve, range(16)))

    assert created.count(True) == 1


def test_a_live_lease_cannot_be_taken_over(
    store: ReservationStore, identity: ReservationIdentity
) -> None:
    reservation = store.reserve(identity, START, 60)

    assert store.take_over(identity, reservation.reservation_id, 1, 60) is None


def test_a_stale_attempt_cannot_overwrite_the_newer_record(
    store: ReservationStore, identity: ReservationIdentity
) -> None:
    reservation_id = store.reserve(identity, START, 0.05).reservation_id
    expire(store, identity)
    assert store.take_over(identity, reservation_id, 1, 60) == 2

    stale_record = store.record_started(
        identity, reservation_id, 1, "old-instance", b'{"id":"old-instance"}'
    )
    stale_release = store.release(identity, reservation_id, 1)
    newer_record = store.record_started(
        identity, reservation_id, 2, "new-instance", b'{"id":"new-instance"}'
    )

    assert (stale_record, stale_release, newer_record) == (False, False, True)
    row = store.find(identity)
    assert row is not None
    assert (row.state, row.process_instance_id, row.attempt) == (
        "started",
        "new-instance",
        2,
    )


def test_a_stale_failure_cannot_delete_the_newer_attempt(
    store: ReservationStore, identity: ReservationIdentity
) -> None:
    reservation_id = store.reserve(identity, START, 0.05).reservation_id
    expire(store, identity)
    store.take_over(identity, reservation_id, 1, 60)

    assert store.release(identity, reservation_id, 1) is False
    row = store.find(identity)
    assert row is not None
    assert (row.state, row.attempt) == ("pending", 2)


def test_only_one_of_two_concurrent_takeovers_wins(
    store: ReservationStore, identity: ReservationIdentity
) -> None:
    reservation_id = store.reserve(identity, START, 0.05).reservation_id
    expire(store, identity)

    with ThreadPoolExecutor(2) as pool:
        attempts = list(
            pool.map(
                lambda _: store.take_over(identity, reservation_id, 1, 60), range(2)
            )
        )

    assert sorted(attempts, key=str) == [2, None]


def test_claim_expired_skips_rows_that_another_reconciler_holds(
    store: ReservationStore, identity: ReservationIdentity
) -> None:
    store.reserve(identity, START, 0.05)
    expire(store, identity)

    first = store.claim_expired(1000, 60)
    second = store.claim_expired(1000, 60)

    assert identity in [row.identity for row in first]
    assert identity not in [row.identity for row in second]
    claimed = next(row for row in first if row.identity == identity)
    assert (claimed.attempt, claimed.start) == (2, START)


def test_a_late_attempt_of_a_released_reservation_cannot_touch_the_next_one(
    store: ReservationStore, identity: ReservationIdentity
) -> None:
    # attempt 1 of the first reservation hangs; attempt 2 takes over, is refused
    # and releases; a new reservation of the same identity starts at attempt 1
    first = store.reserve(identity, START, 0.05).reservation_id
    expire(store, identity)
    assert store.take_over(identity, first, 1, 60) == 2
    assert store.release(identity, first, 2)
    second = store.reserve(identity, START, 60)
    assert (second.created, second.attempt) == (True, 1)

    late_record = store.record_started(
        identity, first, 1, "late-instance", b'{"id":"late-instance"}'
    )
    late_release = store.release(identity, first, 1)
    late_renewal = store.renew_lease(identity, first, 1, 60)

    assert (late_record, late_release, late_renewal) == (False, False, False)
    row = store.find(identity)
    assert row is not None
    assert (row.reservation_id, row.state, row.attempt) == (
        second.reservation_id,
        "pending",
        1,
    )


def test_a_lease_is_renewed_only_for_the_attempt_that_owns_the_row(
    store: ReservationStore, identity: ReservationIdentity
) -> None:
    reservation_id = store.reserve(identity, START, 0.05).reservation_id
    expire(store, identity)
    assert store.take_over(identity, reservation_id, 1, 0.05) == 2
    expire(store, identity)
    assert store.take_over(identity, reservation_id, 2, 60) == 3

    assert store.renew_lease(identity, reservation_id, 2, 60) is False
    assert store.renew_lease(identity, reservation_id, 3, 60) is True
    row = store.find(identity)
    assert row is not None
    assert (row.attempt, row.lease_expired) == (3, False)


def test_a_start_takes_one_connection_for_all_its_statements(
    store: ReservationStore, identity: ReservationIdentity
) -> None:
    before = store.pool.get_stats().get("requests_num", 0)

    with store.holding_connection():
        reservation_id = store.reserve(identity, START, 60).reservation_id
        store.find(identity)
        store.record_started(
            identity, reservation_id, 1, "instance-1", b'{"id":"instance-1"}'
        )

    assert store.pool.get_stats()["requests_num"] - before == 1
    assert store.find(identity).is_started  # type: ignore[union-attr]


def test_a_pooled_connection_that_the_server_closed_is_replaced(
    identity: ReservationIdentity, database_url: str
) -> None:
    # a name of its own picks this pool's connections out of pg_stat_activity
    name = f"store-test-{uuid.uuid4().hex[:8]}"
    separator = "&" if "?" in database_url else "?"
    store = ReservationStore(
        f"{database_url}{separator}application_name={name}", 4, pool_timeout=5
    )
    store.open()
    try:
        with psycopg.connect(database_url, autocommit=True) as admin:
            store.reserve(identity, START, 60)
            backends = _backends_named(admin, name)
            assert backends

            _terminate(admin, backends, name)

            # the idle connections are dead now; the check finds that without
            # failing the statement, and the pool hands out a fresh connection
            assert store.find(identity) is not None
            assert not backends & _backends_named(admin, name)
    finally:
        store.close()


def _backends_named(admin: psycopg.Connection[Any], name: str) -> set[int]:
    row = admin.execute(
        "SELECT array_agg(pid) FROM pg_stat_activity WHERE application_name = %s",
        (name,),
    ).fetchone()
    return set(row[0] or []) if row else set()


def _terminate(admin: psycopg.Connection[Any], backends: set[int], name: str) -> None:
    """Terminate the server processes and wait until they have exited."""
    for pid in backends:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    wait_until(
        lambda: not backends & _backends_named(admin, name),
        10,
        "the backends to exit",
    )


def test_a_handed_back_connection_is_taken_again_by_the_next_statement(
    store: ReservationStore, identity: ReservationIdentity
) -> None:
    before = store.pool.get_stats().get("requests_num", 0)

    with store.holding_connection():
        store.reserve(identity, START, 60)
        store.hand_back_connection()
        # while the start waits, its connection is free for others
        assert store.pool.get_stats()["pool_available"] >= 1
        store.find(identity)

    assert store.pool.get_stats()["requests_num"] - before == 2


def test_a_row_from_before_reservation_ids_is_fenced_by_its_attempt_alone(
    store: ReservationStore, identity: ReservationIdentity, own_database: str
) -> None:
    store.reserve(identity, START, 0.05)
    # rows that existed when migration 0004 ran have no reservation id
    with psycopg.connect(own_database, autocommit=True) as conn:
        conn.execute(
            "UPDATE reservations SET reservation_id = NULL WHERE business_key = %s",
            (identity.business_key,),
        )
    expire(store, identity)

    assert store.take_over(identity, uuid.uuid4(), 1, 60) is None
    assert store.take_over(identity, None, 1, 60) == 2
    assert store.renew_lease(identity, uuid.uuid4(), 2, 60) is False
    assert store.renew_lease(identity, None, 2, 60) is True
    assert store.record_started(identity, None, 2, "i-1", b'{"id":"i-1"}') is True
    row = store.find(identity)
    assert row is not None
    assert (row.reservation_id, row.state, row.attempt) == (None, "started", 2)
