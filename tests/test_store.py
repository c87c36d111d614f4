"""The reservation store against a real PostgreSQL: uniqueness, leases and fencing."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from devenv.ports import wait_until
from gateway.start_request import ReservationIdentity
from gateway.store import PendingStart
from gateway.store import ReservationStore

START = PendingStart(
    b"f" * 32, "/process-definition/key/k/start", b'{"businessKey":"b"}'
)


@pytest.fixture
def store(database_url: str) -> Iterator[ReservationStore]:
    reservations = ReservationStore(database_url, pool_size=8, pool_timeout=5)
    reservations.open()
    yield reservations
    reservations.close()


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
    store.reserve(identity, START, 60)

    assert store.take_over(identity, 1, 60) is None


def test_a_stale_attempt_cannot_overwrite_the_newer_record(
    store: ReservationStore, identity: ReservationIdentity
) -> None:
    store.reserve(identity, START, 0.05)
    expire(store, identity)
    assert store.take_over(identity, 1, 60) == 2

    stale_record = store.record_started(
        identity, 1, "old-instance", b'{"id":"old-instance"}'
    )
    stale_release = store.release(identity, 1)
    newer_record = store.record_started(
        identity, 2, "new-instance", b'{"id":"new-instance"}'
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
    store.reserve(identity, START, 0.05)
    expire(store, identity)
    store.take_over(identity, 1, 60)

    assert store.release(identity, 1) is False
    row = store.find(identity)
    assert row is not None
    assert (row.state, row.attempt) == ("pending", 2)


def test_only_one_of_two_concurrent_takeovers_wins(
    store: ReservationStore, identity: ReservationIdentity
) -> None:
    store.reserve(identity, START, 0.05)
    expire(store, identity)

    with ThreadPoolExecutor(2) as pool:
        attempts = list(pool.map(lambda _: store.take_over(identity, 1, 60), range(2)))

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
