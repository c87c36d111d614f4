"""SIGTERM lets a replica finish the starts it has in flight."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from devenv.ports import is_listening
from devenv.ports import wait_until
from tests.support.proxy import EngineProxy
from tests.support.proxy import Fault
from tests.support.replica import Replica

START = "/engine-rest/process-definition/key/gateway-waiting/start"
GRACE_PERIOD = 30


def test_sigterm_during_a_held_forward_refuses_new_requests_and_loses_no_answer(
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
        "GATEWAY_GRACE_PERIOD": str(GRACE_PERIOD),
    }
    replica = Replica(env, tmp_path / "replica.log").start()
    proxy.inject(Fault.HOLD, times=1)

    with ThreadPoolExecutor(2) as pool:
        held = pool.submit(
            httpx.post,
            f"{replica.url}{START}",
            json={"businessKey": business_key},
            timeout=60,
        )
        assert proxy.arrived.wait(timeout=30)
        stopped = pool.submit(replica.stop)
        # the port refuses only once the worker has stopped listening too, so
        # the held start is released into a shutdown that has surely begun; the
        # wait ends before the SIGKILL of Replica.stop, whose refusal proves nothing
        try:
            wait_until(
                lambda: not is_listening(replica.port),
                GRACE_PERIOD - 10,
                "the replica to refuse new connections",
            )
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"{replica.url}/healthz", timeout=5)
        finally:
            proxy.release_held("forward")
        answer = held.result(timeout=60)
        stopped.result(timeout=60)

    assert replica.process is not None and replica.process.returncode == 0
    assert "Shutting down: Master" in replica.log_path.read_text()
    [instance] = engine_instances(business_key)
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == instance
    [row] = reservations(business_key)
    assert (row["state"], row["process_instance_id"]) == ("started", instance)
