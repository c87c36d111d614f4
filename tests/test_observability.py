"""Request ids, trusted proxy headers, structured log lines and metrics."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.logs import JsonFormatter
from tests.support.proxy import EngineProxy
from tests.support.replica import Replica

START = "/process-definition/key/gateway-waiting/start"


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
    start_gateway: Callable[..., Any], business_key: str
) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "gateway.example"}
    trusting = start_gateway(trusted_proxies=1)
    wary = start_gateway()

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


def counter(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(
                sample.labels.get(k) == v for k, v in labels.items()
            ):
                return sample.value
    return 0.0


def test_metrics_sum_every_worker(
    database_url: str, engine_url: str, tmp_path: Path
) -> None:
    env = {
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_ENGINE_URL": engine_url,
        "GATEWAY_WORKERS": "3",
        "GATEWAY_THREADS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    (tmp_path / "metrics").mkdir()
    replica = Replica(env, tmp_path / "replica.log").start()
    keys = [f"metric-{uuid.uuid4().hex[:10]}" for _ in range(5)]
    try:
        # a new connection per request, so the workers share them out
        for key in keys:
            assert (
                httpx.post(
                    f"{replica.url}/engine-rest{START}", json={"businessKey": key}
                ).status_code
                == 200
            )
        for key in keys[:3]:
            httpx.post(f"{replica.url}/engine-rest{START}", json={"businessKey": key})
        scrapes = [httpx.get(f"{replica.url}/metrics").text for _ in range(6)]
    finally:
        replica.stop()

    for text in scrapes:
        assert counter(text, "gateway_start_outcomes_total", outcome="created") == 5
        assert counter(text, "gateway_start_outcomes_total", outcome="replayed") == 3
        assert counter(text, "gateway_engine_latency_seconds_count") == 5
        assert (
            counter(
                text, "gateway_request_latency_seconds_count", endpoint="start_by_key"
            )
            == 8
        )
        assert "gateway_pending_reservations" in text
    assert len(list((tmp_path / "metrics").glob("counter_*.db"))) >= 2
