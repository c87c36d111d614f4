"""A late answer to an old attempt leaves the newer attempt's record alone.

Replica A is paused (SIGSTOP) while its start is in flight, so its lease expires
and replica B takes the start over. When A resumes, its late answer arrives.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.store import ReservationStore
from tests.conftest import fault_replica_env
from tests.support.proxy import EngineProxy
from tests.support.proxy import Fault
from tests.support.replica import Replica
from tests.support.reservations import expire_lease
from tests.support.reservations import post_start
from tests.support.reservations import reserve_pending
from tests.test_crashes import START


@pytest.fixture
def replicas(
    database_url: str, proxy: EngineProxy, tmp_path: Path
) -> Iterator[tuple[Replica, Replica]]:
    env = fault_replica_env(database_url, proxy.url)
    a = Replica(env, tmp_path / "a.log").start()
    b = Replica(env, tmp_path / "b.log").start()
    yield a, b
    a.stop()
    b.stop()


def send(url: str, business_key: str, answers: list[httpx.Response]) -> None:
    answers.append(
        httpx.post(f"{url}{START}", json={"businessKey": business_key}, timeout=60)
    )


@pytest.mark.parametrize("late", ["success", "failure"])
def test_late_answer_of_a_stale_attempt_changes_nothing(
    late: str,
    replicas: tuple[Replica, Replica],
    proxy: EngineProxy,
    business_key: str,
    engine_instances: Callable[[str], list[str]],
    reservations: Callable[[str], list[dict[str, Any]]],
    wait_for_lease_expiry: Callable[[str], None],
) -> None:
    a, b = replicas
    proxy.inject(Fault.HOLD, times=1)
    late_answers: list[httpx.Response] = []
    sender = threading.Thread(target=send, args=(a.url, business_key, late_answers))
    sender.start()
    assert proxy.arrived.wait(timeout=30)
    a.pause()

    if late == "success":
        # the engine starts A's instance, but A is frozen and can't record it
        proxy.release_held("forward")
        assert proxy.forwarded.wait(timeout=30)
    wait_for_lease_expiry(business_key)
    takeover = httpx.post(
        f"{b.url}{START}", json={"businessKey": business_key}, timeout=60
    )
    if late == "failure":
        proxy.release_held((404, b'{"type":"RestException","message":"late refusal"}'))
    # the late answer must be waiting in A's socket before A wakes up, or A's
    # own timeout, which ran on while it was stopped, would fire first
    assert proxy.answered.wait(timeout=30)
    a.resume()
    sender.join(timeout=60)

    [instance] = engine_instances(business_key)
    assert takeover.status_code == 200, takeover.text
    assert takeover.json()["id"] == instance
    expected = "adopted" if late == "success" else "created"
    assert takeover.headers["Idempotency-Status"] == expected
    # A did answer its client, late, with what the engine told it
    assert late_answers[0].status_code == (200 if late == "success" else 404)
    [row] = reservations(business_key)
    assert (row["state"], row["process_instance_id"], row["attempt"]) == (
        "started",
        instance,
        2,
    )


def test_a_takeover_that_loses_the_row_during_its_lookup_gets_the_replay(
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
    slow = start_gateway(database_url=own_database, engine_url=proxy.url, lease=60)
    quick = start_gateway(database_url=own_database, engine_url=engine_url, lease=60)
    # the slow gateway takes the row over, and its lookup hangs past the lease
    proxy.inject(Fault.HOLD, matches="process-instance", times=2)
    with ThreadPoolExecutor(1) as pool:
        slow_answer = pool.submit(post_start, slow, document)
        assert proxy.arrived.wait(30)
        expire_lease(own_database, business_key)
        # meanwhile the quick one takes it over again and starts the instance
        quick_answer = post_start(quick, document)
        # the slow lookups find nothing, as they would have before the start
        proxy.release_held((200, b"[]"))
        late = slow_answer.result(60)

    [instance] = engine_instances(business_key)
    assert quick_answer.headers["Idempotency-Status"] == "created"
    assert quick_answer.json()["id"] == instance
    # the slow one lost the row before its forward: it meets the newer attempt
    assert late.status_code == 200, late.text
    assert late.headers["Idempotency-Status"] == "replayed"
    assert late.json()["id"] == instance
