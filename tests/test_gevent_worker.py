"""The gevent worker: a request waiting for I/O never holds up the worker's others."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from devenv.ports import wait_until
from tests.support.proxy import EngineProxy
from tests.support.proxy import Fault
from tests.support.replica import Replica

START = "/engine-rest/process-definition/key/gateway-waiting/start"
DUPLICATES = 50


def gevent_env(database_url: str, engine_url: str) -> dict[str, str]:
    # one worker, so that every request of a test shares its greenlets
    return {
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_ENGINE_URL": engine_url,
        "GATEWAY_WORKER_CLASS": "gevent",
        "GATEWAY_WORKERS": "1",
        "GATEWAY_THREADS": "8",
    }


@pytest.fixture
def replica(database_url: str, proxy: EngineProxy, tmp_path: Path) -> Iterator[Replica]:
    running = Replica(gevent_env(database_url, proxy.url), tmp_path / "gevent.log")
    yield running.start()
    running.stop()


def start(replica: Replica, business_key: str, timeout: float = 60) -> httpx.Response:
    return httpx.post(
        f"{replica.url}{START}", json={"businessKey": business_key}, timeout=timeout
    )


def test_the_worker_runs_as_gevent(replica: Replica) -> None:
    assert "GatewayGeventWorker" in replica.log_path.read_text()


def test_a_start_held_at_the_engine_leaves_the_worker_serving_others(
    replica: Replica,
    proxy: EngineProxy,
    business_key: str,
    engine_instances: Callable[[str], list[str]],
) -> None:
    other_key = f"{business_key}-other"
    proxy.inject(Fault.HOLD, times=1)

    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(start, replica, business_key)
        assert proxy.arrived.wait(timeout=30)
        try:
            # a socket read that blocked the worker would hold this one too,
            # until the timeout fails the test
            other = start(replica, other_key, timeout=20)
        finally:
            proxy.release_held("forward")
        first = held.result(timeout=60)

    assert other.status_code == 200, other.text
    assert first.status_code == 200, first.text
    assert engine_instances(business_key) == [first.json()["id"]]
    assert engine_instances(other_key) == [other.json()["id"]]


def test_a_start_waiting_on_postgresql_leaves_the_worker_serving_others(
    own_database: str, engine_url: str, tmp_path: Path, business_key: str
) -> None:
    replica = Replica(gevent_env(own_database, engine_url), tmp_path / "gevent.log")
    replica.start()
    try:
        with psycopg.connect(own_database) as locker, ThreadPoolExecutor(1) as pool:
            locker.execute("LOCK TABLE reservations IN ACCESS EXCLUSIVE MODE")
            blocked = pool.submit(start, replica, business_key)
            wait_until(
                lambda: _waiting_on_a_lock(own_database),
                30,
                "the gateway's statement to wait for the table lock",
            )
            try:
                # psycopg waiting in C for its answer would block the worker,
                # and this would wait for the lock as well
                health = httpx.get(f"{replica.url}/healthz", timeout=10)
            finally:
                locker.rollback()
            answer = blocked.result(timeout=60)
    finally:
        replica.stop()

    assert health.status_code == 200
    assert answer.status_code == 200, answer.text


def test_concurrent_identical_starts_make_one_instance(
    replica: Replica,
    business_key: str,
    engine_instances: Callable[[str], list[str]],
) -> None:
    with ThreadPoolExecutor(DUPLICATES) as pool:
        sent = [pool.submit(start, replica, business_key) for _ in range(DUPLICATES)]
        answers = [future.result() for future in sent]

    [instance] = engine_instances(business_key)
    statuses = Counter(answer.status_code for answer in answers)
    assert set(statuses) <= {200, 409}, statuses
    assert statuses[200] >= 1
    for answer in answers:
        if answer.status_code == 200:
            assert answer.json()["id"] == instance
        else:
            assert answer.headers["Retry-After"]


def _waiting_on_a_lock(database_url: str) -> bool:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    return bool(row and row[0])
