"""Request ids, trusted proxy headers, structured log lines and metrics."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.logs import JsonFormatter
from tests.support.metrics import file_sample_value
from tests.support.metrics import sample_value
from tests.support.proxy import EngineProxy
from tests.support.proxy import Fault
from tests.support.replica import Replica

START = "/process-definition/key/gateway-waiting/start"
OUTCOMES = "gateway_start_outcomes_total"


def test_request_id_is_returned_logged_and_forwarded(
    proxied_gateway: Any,
    proxy: EngineProxy,
    business_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="gateway")

    with proxied_gateway.client() as http:
        answer = http.post(
            START,
            json={"businessKey": business_key},
            headers={"X-Request-Id": "req-7f3a"},
        )

    assert answer.headers["X-Request-Id"] == "req-7f3a"
    assert [r.headers.get("X-Request-Id") for r in proxy.requests()] == ["req-7f3a"]
    [decision] = [r for r in caplog.records if getattr(r, "event", None) == "start"]
    line = orjson.loads(JsonFormatter().format(decision))
    assert line["request_id"] == "req-7f3a"
    assert line["businessKey"] == business_key
    assert line["processDefinitionKey"] == "gateway-waiting"
    assert line["outcome"] == "created"
    assert line["processInstanceId"] == answer.json()["id"]
    assert line["durationMs"] > 0


def test_a_refused_start_logs_its_outcome_in_the_start_vocabulary(
    client: httpx.Client, business_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    client.post(START, json={"businessKey": business_key})
    caplog.set_level(logging.INFO, logger="gateway")
    caplog.clear()

    reused = client.post(START, json={"businessKey": business_key, "variables": {}})

    assert reused.status_code == 422
    [decision] = [r for r in caplog.records if getattr(r, "event", None) == "start"]
    assert decision.outcome == "rejected"


@pytest.mark.parametrize("sent", [None, "has spaces in it", "x" * 200])
def test_missing_or_unsafe_request_id_is_replaced(
    client: httpx.Client, sent: str | None
) -> None:
    headers = {"X-Request-Id": sent} if sent else {}

    answer = client.get("/version", headers=headers)

    assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["X-Request-Id"])


def test_forwarded_headers_are_honoured_only_from_trusted_proxies(
    start_gateway: Callable[..., Any],
    business_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    forwarded = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "gateway.example",
        "X-Forwarded-For": "203.0.113.9",
    }
    trusting = start_gateway(trusted_proxies=1)
    wary = start_gateway()
    caplog.set_level(logging.INFO, logger="gateway")

    with trusting.client() as http:
        trusted = http.post(
            START, json={"businessKey": business_key}, headers=forwarded
        )
    with wary.client() as http:
        ignored = http.post(
            START, json={"businessKey": business_key}, headers=forwarded
        )

    instance = trusted.json()["id"]
    assert trusted.json()["links"][0]["href"] == (
        f"https://gateway.example/engine-rest/process-instance/{instance}"
    )
    assert ignored.json()["links"][0]["href"] == (
        f"{wary.url}/engine-rest/process-instance/{instance}"
    )
    decisions = [r for r in caplog.records if getattr(r, "event", None) == "start"]
    assert [decision.client for decision in decisions] == ["203.0.113.9", "127.0.0.1"]


def test_metrics_sum_every_worker(
    own_database: str, proxy: EngineProxy, tmp_path: Path
) -> None:
    # a database of its own, so the pending gauge counts only this test's rows
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    env = {
        "GATEWAY_DATABASE_URL": own_database,
        "GATEWAY_ENGINE_URL": proxy.url,
        "GATEWAY_WORKERS": "3",
        # a sync worker takes no connection while it serves one, so a start
        # held at the engine sends the next start to another worker
        "GATEWAY_WORKER_CLASS": "sync",
        "GATEWAY_THREADS": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }
    replica = Replica(env, tmp_path / "replica.log").start()
    keys = [f"metric-{uuid.uuid4().hex[:10]}" for _ in range(5)]

    def start(body: dict[str, Any], model: str = "gateway-waiting") -> int:
        url = f"{replica.url}/engine-rest/process-definition/key/{model}/start"
        return httpx.post(url, json=body, timeout=60).status_code

    try:
        proxy.inject(Fault.HOLD, times=1)
        with ThreadPoolExecutor(max_workers=1) as pool:
            held = pool.submit(start, {"businessKey": keys[0]})
            assert proxy.arrived.wait(timeout=30)
            assert start({"businessKey": keys[1]}) == 200
            proxy.release_held("forward")
            assert held.result() == 200
        assert [start({"businessKey": key}) for key in keys[2:]] == [200] * 3
        assert [start({"businessKey": key}) for key in keys[:3]] == [200] * 3
        assert start({"businessKey": keys[0], "variables": {}}) == 422
        assert start({"businessKey": keys[4]}, model="no-such-definition") == 404
        settled = httpx.get(f"{replica.url}/metrics").text
        proxy.inject(Fault.BAD_GATEWAY, times=1)
        assert start({"businessKey": f"metric-{uuid.uuid4().hex[:10]}"}) == 503
        scrapes = [httpx.get(f"{replica.url}/metrics").text for _ in range(6)]
    finally:
        replica.stop()

    assert sample_value(settled, "gateway_pending_reservations") == 0
    for text in scrapes:
        assert outcome(text, "created") == 5
        assert outcome(text, "replayed") == 3
        assert outcome(text, "rejected") == 1
        assert outcome(text, "released") == 1
        assert outcome(text, "unknown") == 1
        assert sample_value(text, "gateway_engine_latency_seconds_count") == 7
        assert (
            sample_value(
                text, "gateway_request_latency_seconds_count", endpoint="start_by_key"
            )
            == 11
        )
        # the unknown start stays pending until its lease expires
        assert sample_value(text, "gateway_pending_reservations") == 1
    created = [
        file_sample_value(path, OUTCOMES, outcome="created")
        for path in metrics.glob("counter_*.db")
    ]
    assert sum(count > 0 for count in created) >= 2
    assert sum(created) == 5


def outcome(text: str, name: str) -> float:
    """Return a scrape's count of starts that ended with one outcome."""
    return sample_value(text, OUTCOMES, outcome=name)
