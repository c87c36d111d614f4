"""`gateway purge` deletes old started reservations and nothing else."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import psycopg
import pytest

from gateway.start_request import ReservationIdentity
from gateway.store import ReservationStore
from tests.support.replica import GATEWAY
from tests.support.reservations import KEY
from tests.support.reservations import reserve_pending

START = "/process-definition/key/gateway-waiting/start"


def reserve(
    store: ReservationStore, database_url: str, hours_ago: float, started: bool
) -> str:
    """Make a reservation created some hours ago; return its businessKey."""
    key = f"purge-{uuid.uuid4().hex[:10]}"
    reservation = reserve_pending(store, key, lease=60)
    if started:
        identity = ReservationIdentity("default", None, KEY, key)
        assert store.record_started(
            identity, reservation.reservation_id, 1, f"id-{key}", b'{"id":"x"}'
        )
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE reservations SET created_at = now() - make_interval(hours => %s)"
            " WHERE business_key = %s",
            (int(hours_ago), key),
        )
    return key


def remaining(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as conn:
        return {row[0] for row in conn.execute("SELECT business_key FROM reservations")}


def purge(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GATEWAY_DATABASE_URL": database_url}
    return subprocess.run(
        [GATEWAY, "purge", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        # the exit status is what the tests look at
        check=False,
    )


def test_purge_deletes_started_reservations_older_than_the_given_days(
    own_store: ReservationStore, own_database: str
) -> None:
    old_started = reserve(own_store, own_database, hours_ago=72, started=True)
    recent_started = reserve(own_store, own_database, hours_ago=24, started=True)
    old_pending = reserve(own_store, own_database, hours_ago=72, started=False)

    done = purge(own_database, "--older-than", "2")

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"purged": 1}
    assert remaining(own_database) == {recent_started, old_pending}
    assert old_started not in remaining(own_database)


def test_purge_takes_a_fraction_of_a_day(
    own_store: ReservationStore, own_database: str
) -> None:
    older = reserve(own_store, own_database, hours_ago=13, started=True)
    younger = reserve(own_store, own_database, hours_ago=11, started=True)

    done = purge(own_database, "--older-than", "0.5")

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"purged": 1}
    assert remaining(own_database) == {younger}
    assert older not in remaining(own_database)


@pytest.mark.parametrize("days", ["0", "-1", "nan", "inf", "two"])
def test_purge_refuses_an_age_that_is_not_a_positive_number_of_days(
    own_store: ReservationStore, own_database: str, days: str
) -> None:
    kept = reserve(own_store, own_database, hours_ago=72, started=True)

    done = purge(own_database, "--older-than", days)

    assert done.returncode == 2
    assert "--older-than" in done.stderr
    assert remaining(own_database) == {kept}
