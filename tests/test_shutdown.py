"""SIGTERM lets a replica finish the starts it has in flight."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from devenv.ports import wait_until
from tests.support.proxy import EngineProxy
from tests.support.proxy import Fault
from tests.support.replica import Replica

START = "/engine-rest/process-definition/key/gateway-waiting/start"


def test_sigterm_during_a_held_forward_loses_no_answer(
    database_url: str,
    proxy: EngineProxy,
    tmp_path: Path,
    business_key: str,
    engine_instances: Callable[[str], list[str]],
    reservations: Callable[[str], list[dict[str, Any]]],
) -> None:
    env = {
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_ENGINE_URL": proxy.url,
        "GATEWAY_WORKERS": "1",
        "GATEWAY_GRACE_PERIOD": "30",
    }
    replica = Replica(env, tmp_path / "replica.log").start()
    answers: list[httpx.Response] = []
    proxy.inject(Fault.HOLD, times=1)
    sender = threading.Thread(
        target=lambda: answers.append(
            httpx.post(
                f"{replica.url}{START}", json={"businessKey": business_key}, timeout=60
            )
        )
    )
    sender.start()
    assert proxy.arrived.wait(timeout=30)

    stopper = threading.Thread(target=replica.stop)
    stopper.start()
    # let the held start go only once the master has begun its shutdown
    wait_until(
        lambda: "Handling signal: term" in replica.log_path.read_text(),
        30,
        "the replica to handle SIGTERM",
    )
    proxy.release_held("forward")
    sender.join(timeout=60)
    stopper.join(timeout=60)

    assert replica.process is not None and replica.process.returncode == 0
    assert "Shutting down: Master" in replica.log_path.read_text()
    [instance] = engine_instances(business_key)
    assert answers[0].status_code == 200
    assert answers[0].json()["id"] == instance
    [row] = reservations(business_key)
    assert (row["state"], row["process_instance_id"]) == ("started", instance)
