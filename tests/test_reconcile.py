"""Reconcilers share the expired rows, and `gateway reconcile --loop` settles them."""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from devenv.ports import wait_until
from gateway.config import load_settings
from gateway.errors import StartInProgress
from gateway.services import build_services
from gateway.store import _CLAIM_EXPIRED
from gateway.store import ReservationStore
from tests.conftest import FAULT_SETTINGS
from tests.conftest import fault_replica_env
from tests.support.proxy import EngineProxy
from tests.support.proxy import Fault
from tests.support.replica import GATEWAY
from tests.support.reservations import expire_lease
from tests.support.reservations import post_start
from tests.support.reservations import reserve_pending

EXPIRED_ROWS = 8
FIRST_CLAIM = 3
BATCH = 1000
START = "/process-definition/key/gateway-waiting/start"


def reserve_expired(store: ReservationStore, count: int) -> set[str]:
    """Reserve starts whose lease has already run out; return their businessKeys."""
    keys = {f"expired-{uuid.uuid4().hex[:10]}" for _ in range(count)}
    for key in keys:
        reserve_pending(store, key)
    return keys


def test_a_claim_skips_the_rows_that_an_open_claim_holds(
    own_store: ReservationStore, own_database: str
) -> None:
    keys = reserve_expired(own_store, EXPIRED_ROWS)

    with (
        psycopg.connect(own_database) as first_reconciler,
        ThreadPoolExecutor(1) as pool,
    ):
        # the store's own claim, left inside its transaction so its locks stay
        claimed = first_reconciler.cursor(row_factory=dict_row).execute(
            _CLAIM_EXPIRED, {"limit": FIRST_CLAIM, "lease": 60, "expired_by": None}
        )
        first = {row["business_key"] for row in claimed.fetchall()}
        second_claim = pool.submit(own_store.claim_expired, 1000, 60)
        try:
            second = {row.identity.business_key for row in second_claim.result(15)}
        except TimeoutError:
            pytest.fail("the second claim waited for the rows that the first one holds")
        finally:
            first_reconciler.commit()

    assert len(first) == FIRST_CLAIM
    assert first.isdisjoint(second)
    assert first | second == keys
    with psycopg.connect(own_database) as conn:
        attempts = conn.execute("SELECT DISTINCT attempt FROM reservations").fetchall()
    assert attempts == [(2,)]


def test_reconcile_loop_adopts_a_lost_start_and_reports_on_sigterm(
    own_database: str,
    proxy: EngineProxy,
    start_gateway: Callable[..., Any],
    business_key: str,
    engine_instances: Callable[[str], list[str]],
) -> None:
    gateway = start_gateway(
        database_url=own_database, engine_url=proxy.url, **FAULT_SETTINGS
    )
    # the engine gets the start only after the gateway gave up on it
    proxy.inject(Fault.HOLD, times=1)
    with gateway.client() as http:
        timed_out = http.post(START, json={"businessKey": business_key})
    proxy.release_held("forward")
    assert proxy.forwarded.wait(timeout=30)
    assert timed_out.status_code == 504
    assert _pending_with_live_lease(own_database, business_key)

    reconciler = subprocess.Popen(
        [GATEWAY, "reconcile", "--loop", "--interval", "0.2"],
        env=fault_replica_env(own_database, proxy.url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(
            lambda: _started_instance(own_database, business_key) is not None,
            60,
            f"the reconciler to settle {business_key}",
        )
    finally:
        reconciler.send_signal(signal.SIGTERM)
        out, err = reconciler.communicate(timeout=30)

    assert reconciler.returncode == 0, err.decode()[-2000:]
    report = json.loads(out.decode().strip().splitlines()[-1])
    assert report == {"adopted": 1, "reforwarded": 0, "released": 0, "unresolved": 0}
    [instance] = engine_instances(business_key)
    assert _started_instance(own_database, business_key) == instance
    starts = [r for r in proxy.requests() if r.path.endswith("/start")]
    assert len(starts) == 1


def _pending_with_live_lease(database_url: str, business_key: str) -> bool:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT lease_expires_at > now() FROM reservations"
            " WHERE business_key = %s AND state = 'pending'",
            (business_key,),
        ).fetchone()
    return bool(row and row[0])


def _started_instance(database_url: str, business_key: str) -> str | None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT process_instance_id FROM reservations"
            " WHERE business_key = %s AND state = 'started'",
            (business_key,),
        ).fetchone()
    return None if row is None else str(row[0])


def test_reconcile_reports_a_refusal_that_keeps_a_row_pending_as_unresolved(
    own_store: ReservationStore, own_database: str, engine_url: str
) -> None:
    # the engine refuses a missing definition with 404, which after a takeover
    # says nothing about an earlier attempt, so that row must stay pending
    missing = f"missing-{uuid.uuid4().hex[:10]}"
    reserve_pending(own_store, missing, key="no-such-definition")
    # a body the engine rejects as invalid (400) releases its row
    invalid = f"invalid-{uuid.uuid4().hex[:10]}"
    variables = {"n": {"value": "x", "type": "Integer"}}
    document = {"businessKey": invalid, "variables": variables}
    reserve_pending(own_store, invalid, document=document)

    done = subprocess.run(
        [GATEWAY, "reconcile"],
        env=fault_replica_env(own_database, engine_url),
        capture_output=True,
        timeout=120,
        check=True,
    )

    report = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert report == {"adopted": 0, "reforwarded": 0, "released": 1, "unresolved": 1}
    with psycopg.connect(own_database) as conn:
        rows = conn.execute(
            "SELECT business_key, state, attempt FROM reservations"
        ).fetchall()
    assert rows == [(missing, "pending", 2)]


def test_a_reconciler_whose_claim_went_stale_does_not_forward_the_start(
    own_store: ReservationStore,
    own_database: str,
    engine_url: str,
    proxy: EngineProxy,
    start_gateway: Callable[..., Any],
    business_key: str,
    engine_instances: Callable[[str], list[str]],
) -> None:
    document = {"businessKey": business_key}
    reserve_pending(own_store, business_key)
    # the reconciler claims the row, then spends its whole lease elsewhere
    [claimed] = own_store.claim_expired(BATCH, 60)
    expire_lease(own_database, business_key)
    # meanwhile a client's retry takes the row over; its forward is held
    # its engine timeout outlasts the hold, so its forward ends with an answer
    gateway = start_gateway(
        database_url=own_database, engine_url=proxy.url, engine_timeout=30, lease=60
    )
    proxy.inject(Fault.HOLD, times=1)
    with ThreadPoolExecutor(1) as pool:
        retry = pool.submit(post_start, gateway, document)
        assert proxy.arrived.wait(30)

        reconciler = build_services(
            load_settings(fault_replica_env(own_database, engine_url))
        )
        try:
            with pytest.raises(StartInProgress):
                reconciler.starts.settle_claimed(claimed, {})
        finally:
            reconciler.store.close()
        proxy.release_held("forward")
        answer = retry.result(60)

    assert answer.status_code == 200, answer.text
    assert answer.headers["Idempotency-Status"] == "created"
    assert engine_instances(business_key) == [answer.json()["id"]]


def test_a_reconcile_pass_ends_while_the_engine_hangs_past_the_lease(
    own_store: ReservationStore, own_database: str, proxy: EngineProxy
) -> None:
    # each row's lookup hangs until the engine timeout, so the rows claimed
    # first expire again before the pass has reached the last one
    rows = int(FAULT_SETTINGS["lease"] / FAULT_SETTINGS["engine_timeout"]) + 2
    keys = reserve_expired(own_store, rows)
    proxy.inject(
        Fault.DELAY_RESPONSE,
        matches="/process-instance",
        delay=FAULT_SETTINGS["engine_timeout"] * 3,
    )

    done = subprocess.run(
        [GATEWAY, "reconcile"],
        env=fault_replica_env(own_database, proxy.url),
        capture_output=True,
        timeout=rows * FAULT_SETTINGS["engine_timeout"] * 4 + 60,
        check=True,
    )

    report = json.loads(done.stdout.decode().strip().splitlines()[-1])
    # every row was tried once in the pass, not again after its lease ran out
    assert report == {"adopted": 0, "reforwarded": 0, "released": 0, "unresolved": rows}
    with psycopg.connect(own_database) as conn:
        attempts = conn.execute(
            "SELECT business_key, attempt FROM reservations WHERE state = 'pending'"
        ).fetchall()
    assert dict(attempts) == dict.fromkeys(keys, 2)
