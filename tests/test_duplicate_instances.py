"""Instances started past the gateway: the lookup adopts the oldest of them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.metrics import sample_value
from tests.support.proxy import EngineProxy
from tests.support.proxy import Fault

MODEL = "gateway-waiting"
START = f"/process-definition/key/{MODEL}/start"
DUPLICATES = "gateway_duplicate_instances_total"


def test_lookup_that_finds_several_instances_adopts_the_oldest(
    faulty_gateway: Any,
    proxy: EngineProxy,
    engine_http: httpx.Client,
    business_key: str,
    engine_instances: Callable[[str], list[str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # someone started two instances on the engine itself, oldest first
    oldest = start_directly(engine_http, business_key)
    newer = start_directly(engine_http, business_key)
    assert start_time(engine_http, oldest) < start_time(engine_http, newer)
    duplicates_before = read_duplicates(faulty_gateway)
    caplog.set_level(logging.INFO, logger="gateway")

    # the gateway's own start reaches the engine, but its answer is lost
    proxy.inject(Fault.DROP_RESPONSE, times=1)
    with faulty_gateway.client() as http:
        adopted = http.post(START, json={"businessKey": business_key})
        replay = http.post(START, json={"businessKey": business_key})

    assert proxy.forwarded.is_set()
    assert len(engine_instances(business_key)) == 3
    assert adopted.status_code == 200, adopted.text
    assert adopted.headers["Idempotency-Status"] == "adopted"
    assert adopted.json()["id"] == oldest
    assert adopted.json()["businessKey"] == business_key
    assert replay.headers["Idempotency-Status"] == "replayed"
    assert replay.json()["id"] == oldest
    assert read_duplicates(faulty_gateway) == duplicates_before + 1
    [warning] = [
        record
        for record in caplog.records
        if record.levelno == logging.WARNING and oldest in record.getMessage()
    ]
    assert "3 instances" in warning.getMessage()


def start_directly(engine_http: httpx.Client, business_key: str) -> str:
    """Start an instance on the engine itself, past the gateway."""
    answer = engine_http.post(START, json={"businessKey": business_key})
    answer.raise_for_status()
    return str(answer.json()["id"])


def start_time(engine_http: httpx.Client, instance_id: str) -> str:
    """Return when the engine started an instance, as its sortable ISO text."""
    answer = engine_http.get(f"/history/process-instance/{instance_id}")
    answer.raise_for_status()
    return str(answer.json()["startTime"])


def read_duplicates(gateway: Any) -> float:
    """Scrape the gateway's count of lookups that found several instances."""
    scrape = httpx.get(f"{gateway.url}/metrics", timeout=30)
    scrape.raise_for_status()
    return sample_value(scrape.text, DUPLICATES)
