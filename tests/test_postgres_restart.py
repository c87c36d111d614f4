"""PostgreSQL restarts under load: 503 while it is down, recovery, no duplicates."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest

from devenv.ports import wait_until
from gateway.reconcile import Reconciler
from tests.conftest import TEST_LEASE
from tests.conftest import PostgresServer
from tests.support.proxy import EngineProxy
from tests.support.witness import ReservationWitness

START = "/process-definition/key/gateway-straight/start"
CLIENTS = 8
KEYS_PER_CLIENT = 6


@pytest.fixture
def witness(proxy: EngineProxy, database_url: str) -> ReservationWitness:
    """Check each start's reservation as the start arrives at the proxy."""
    witness = ReservationWitness(database_url)
    proxy.before_forward = witness.check
    return witness


def test_restart_under_load_recovers_without_duplicates(
    postgres: PostgresServer,
    proxy: EngineProxy,
    witness: ReservationWitness,
    start_gateway: Callable[..., Any],
    database_url: str,
    count_instances: Callable[[str], int],
) -> None:
    if postgres.local is None:
        pytest.skip("restarting the server is done on the local PostgreSQL only")
    gateway = start_gateway(
        engine_url=proxy.url,
        engine_timeout=1.0,
        lease=TEST_LEASE,
        inflight_wait=0.3,
        db_pool_timeout=0.5,
    )
    run = uuid.uuid4().hex[:8]
    keys = [
        [f"restart-{run}-{c}-{k}" for k in range(KEYS_PER_CLIENT)]
        for c in range(CLIENTS)
    ]
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    some_started = threading.Event()
    some_refused = threading.Event()
    unfinished: list[str] = []

    def client(own: list[str]) -> None:
        with gateway.client() as http:
            for key in own:
                if not _start_until_done(
                    http, key, statuses, lock, some_started, some_refused
                ):
                    unfinished.append(key)

    threads = [threading.Thread(target=client, args=(own,)) for own in keys]
    for thread in threads:
        thread.start()
    assert some_started.wait(timeout=60)
    postgres.local.stop()
    assert some_refused.wait(timeout=60)
    postgres.local.start()
    for thread in threads:
        thread.join(timeout=180)

    all_keys = [key for own in keys for key in own]
    assert unfinished == []
    assert statuses[503] > 0
    assert all(count_instances(key) == 1 for key in all_keys)

    # nothing reached the engine without a committed reservation
    arrivals = witness.arrivals()
    assert [a.business_key for a in arrivals if not a.reserved] == []
    assert {a.business_key for a in arrivals} == set(all_keys)

    # a start recorded while the database was down is adopted by reconciliation
    services = gateway.server.app.extensions["gateway"]
    wait_until(lambda: _no_live_pending(database_url, all_keys), 30, "pending leases")
    Reconciler(gateway.settings, services.store, services.starts).run_once()
    with psycopg.connect(database_url) as conn:
        states = conn.execute(
            "SELECT state, count(*) FROM reservations"
            " WHERE business_key = ANY(%s) GROUP BY 1",
            (all_keys,),
        ).fetchall()
    assert dict(states) == {"started": len(all_keys)}


def _start_until_done(
    http: httpx.Client,
    key: str,
    statuses: Counter[int],
    lock: threading.Lock,
    some_started: threading.Event,
    some_refused: threading.Event,
) -> bool:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            answer = http.post(START, json={"businessKey": key})
        except httpx.HTTPError:
            continue
        with lock:
            statuses[answer.status_code] += 1
        if answer.status_code == 200:
            some_started.set()
            return True
        if answer.status_code == 503:
            some_refused.set()
        # a client backing off before its retry, as a real one would
        time.sleep(0.05)
    return False


def _no_live_pending(database_url: str, keys: list[str]) -> bool:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM reservations WHERE business_key = ANY(%s)"
            " AND state = 'pending' AND lease_expires_at > now()",
            (keys,),
        ).fetchone()
    return row is not None and row[0] == 0
