"""A replica killed mid-start leaves nothing unsettled: a retry or reconcile ends it.

The gateway runs as real gunicorn processes here. Replica A is killed with
SIGKILL at one of three points; replica B, or `gateway reconcile`, settles the
start once the lease has expired.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from devenv.ports import wait_until
from tests.conftest import fault_replica_env
from tests.support.proxy import EngineProxy
from tests.support.proxy import Fault
from tests.support.replica import GATEWAY
from tests.support.replica import Replica

START = "/engine-rest/process-definition/key/gateway-waiting/start"
POINTS = ["after-reserve", "engine-handling", "before-record"]


@pytest.fixture(scope="module")
def crash_proxy(engine_url: str) -> Iterator[EngineProxy]:
    server = EngineProxy(engine_url).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def replica_env(database_url: str, crash_proxy: EngineProxy) -> dict[str, str]:
    return fault_replica_env(database_url, crash_proxy.url)


@pytest.fixture(scope="module")
def survivor(
    replica_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replica]:
    replica = Replica(replica_env, tmp_path_factory.mktemp("b") / "b.log").start()
    yield replica
    replica.stop()


@pytest.fixture
def victim(replica_env: dict[str, str], tmp_path: Path) -> Iterator[Replica]:
    replica = Replica(replica_env, tmp_path / "a.log").start()
    yield replica
    replica.stop()


def crash_at(
    point: str,
    victim: Replica,
    proxy: EngineProxy,
    database_url: str,
    business_key: str,
) -> None:
    """Send a start to the victim and kill it at the given point."""
    proxy.clear()
    proxy.inject(Fault.HOLD, times=1)
    sender = threading.Thread(
        target=_send, args=(victim.url, business_key), daemon=True
    )
    sender.start()
    # the reservation is committed before anything reaches the proxy
    assert proxy.arrived.wait(timeout=30)

    if point == "after-reserve":
        victim.kill()
        proxy.release_held("discard")
    elif point == "engine-handling":
        victim.kill()
        proxy.release_held("forward")
        assert proxy.forwarded.wait(timeout=30)
    else:
        _kill_while_recording(victim, proxy, database_url, business_key)
    sender.join(timeout=30)


def _kill_while_recording(
    victim: Replica, proxy: EngineProxy, database_url: str, business_key: str
) -> None:
    # hold the row so that the victim's record blocks once the engine answered
    with psycopg.connect(database_url) as lock:
        lock.execute(
            "SELECT 1 FROM reservations WHERE business_key = %s FOR UPDATE",
            (business_key,),
        )
        proxy.release_held("forward")
        assert proxy.forwarded.wait(timeout=30)
        backend = _wait_for_blocked_record(database_url)
        victim.kill()
        # a dead process's statement must not commit once the lock goes away
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
        lock.rollback()


def _wait_for_blocked_record(database_url: str) -> int:
    found: list[int] = []

    def blocked() -> bool:
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE '%UPDATE reservations%'"
            ).fetchone()
        if row:
            found.append(row[0])
        return bool(row)

    wait_until(blocked, 30, "the victim's blocked record")
    return found[0]


def _send(url: str, business_key: str) -> None:
    # the replica dies, so this client never hears back
    with contextlib.suppress(httpx.HTTPError):
        httpx.post(f"{url}{START}", json={"businessKey": business_key}, timeout=30)


def reconcile(env: dict[str, str]) -> dict[str, int]:
    done = subprocess.run(
        [GATEWAY, "reconcile"], env=env, capture_output=True, timeout=120, check=True
    )
    report: dict[str, int] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return report


EXPECTED = {
    "after-reserve": ("created", "reforwarded"),
    "engine-handling": ("adopted", "adopted"),
    "before-record": ("adopted", "adopted"),
}


@pytest.mark.parametrize("point", POINTS)
def test_retry_on_another_replica_settles_a_crashed_start(
    point: str,
    victim: Replica,
    survivor: Replica,
    crash_proxy: EngineProxy,
    database_url: str,
    business_key: str,
    engine_instances: Callable[[str], list[str]],
    reservations: Callable[[str], list[dict[str, Any]]],
    wait_for_lease_expiry: Callable[[str], None],
) -> None:
    crash_at(point, victim, crash_proxy, database_url, business_key)
    wait_for_lease_expiry(business_key)

    retry = httpx.post(
        f"{survivor.url}{START}", json={"businessKey": business_key}, timeout=30
    )

    assert retry.status_code == 200, retry.text
    assert retry.headers["Idempotency-Status"] == EXPECTED[point][0]
    [instance] = engine_instances(business_key)
    assert retry.json()["id"] == instance
    [row] = reservations(business_key)
    assert (row["state"], row["process_instance_id"]) == ("started", instance)


@pytest.mark.parametrize("point", POINTS)
def test_reconcile_settles_a_crashed_start_without_a_retry(
    point: str,
    victim: Replica,
    crash_proxy: EngineProxy,
    replica_env: dict[str, str],
    database_url: str,
    business_key: str,
    engine_instances: Callable[[str], list[str]],
    reservations: Callable[[str], list[dict[str, Any]]],
    wait_for_lease_expiry: Callable[[str], None],
) -> None:
    crash_at(point, victim, crash_proxy, database_url, business_key)
    wait_for_lease_expiry(business_key)

    report = reconcile(replica_env)

    assert report[EXPECTED[point][1]] >= 1
    [instance] = engine_instances(business_key)
    [row] = reservations(business_key)
    assert (row["state"], row["process_instance_id"]) == ("started", instance)
