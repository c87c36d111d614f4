"""Starts whose answer is lost are settled by looking them up in the engine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.proxy import EngineProxy
from tests.support.proxy import Fault

START = "/process-definition/key/{}/start"


@pytest.mark.parametrize("model", ["gateway-waiting", "gateway-straight"])
def test_lost_response_is_adopted_or_replayed(
    model: str,
    faulty_gateway: Any,
    proxy: EngineProxy,
    business_key: str,
    engine_instances: Callable[[str], list[str]],
) -> None:
    proxy.inject(Fault.DROP_RESPONSE, times=1)
    with faulty_gateway.client() as http:
        first = http.post(START.format(model), json={"businessKey": business_key})
        retry = http.post(START.format(model), json={"businessKey": business_key})

    assert proxy.forwarded.is_set()
    [instance] = engine_instances(business_key)
    # the gateway looks the identity up at once, so even the first answer has it
    assert first.status_code == 200, first.text
    assert first.headers["Idempotency-Status"] == "adopted"
    assert first.json()["id"] == instance
    assert first.json()["businessKey"] == business_key
    assert retry.headers["Idempotency-Status"] == "replayed"
    assert retry.json()["id"] == instance
    # the adopted answer is built by the gateway, with links to the gateway
    assert [link["href"] for link in first.json()["links"]] == [
        f"{faulty_gateway.url}/engine-rest/process-instance/{instance}"
    ]


def test_engine_answering_after_the_timeout_ends_with_one_recorded_instance(
    faulty_gateway: Any,
    proxy: EngineProxy,
    business_key: str,
    engine_instances: Callable[[str], list[str]],
    reservations: Callable[[str], list[dict[str, Any]]],
    wait_for_lease_expiry: Callable[[str], None],
) -> None:
    # the engine gets the start only after the gateway gave up on it
    proxy.inject(Fault.HOLD, times=1)
    with faulty_gateway.client() as http:
        timed_out = http.post(
            START.format("gateway-waiting"), json={"businessKey": business_key}
        )
        proxy.release_held("forward")
        proxy.forwarded.wait(timeout=30)
        wait_for_lease_expiry(business_key)
        retry = http.post(
            START.format("gateway-waiting"), json={"businessKey": business_key}
        )

    assert timed_out.status_code == 504
    assert timed_out.json()["type"] == "StartTimedOut"
    assert int(timed_out.headers["Retry-After"]) >= 1
    [instance] = engine_instances(business_key)
    assert retry.status_code == 200
    assert retry.headers["Idempotency-Status"] == "adopted"
    assert retry.json()["id"] == instance
    [row] = reservations(business_key)
    assert (row["state"], row["process_instance_id"], row["attempt"]) == (
        "started",
        instance,
        2,
    )


@pytest.mark.parametrize("fault", [Fault.RESET_BEFORE_FORWARD, Fault.BAD_GATEWAY])
def test_start_that_never_reached_the_engine_starts_once_after_the_lease(
    fault: Fault,
    faulty_gateway: Any,
    proxy: EngineProxy,
    business_key: str,
    engine_instances: Callable[[str], list[str]],
    reservations: Callable[[str], list[dict[str, Any]]],
    wait_for_lease_expiry: Callable[[str], None],
) -> None:
    proxy.inject(fault, times=1)
    body = {"businessKey": business_key}
    with faulty_gateway.client() as http:
        unknown = http.post(START.format("gateway-waiting"), json=body)
        early = http.post(START.format("gateway-waiting"), json=body)
        wait_for_lease_expiry(business_key)
        retry = http.post(START.format("gateway-waiting"), json=body)
        replay = http.post(START.format("gateway-waiting"), json=body)

    assert unknown.status_code == 503
    assert unknown.json()["type"] == "StartOutcomeUnknown"
    assert int(unknown.headers["Retry-After"]) >= 1
    # before the lease runs out nobody may forward it again
    assert early.status_code in (409, 503)
    assert "Retry-After" in early.headers
    assert retry.status_code == 200, retry.text
    assert retry.headers["Idempotency-Status"] == "created"
    assert replay.json()["id"] == retry.json()["id"]
    assert engine_instances(business_key) == [retry.json()["id"]]
    assert reservations(business_key)[0]["attempt"] == 2


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_engine_error_after_commit_is_adopted(
    status: int,
    faulty_gateway: Any,
    proxy: EngineProxy,
    business_key: str,
    engine_instances: Callable[[str], list[str]],
) -> None:
    # the engine created the instance, yet the answer is a 5xx with an engine
    # error body; the one confirming lookup finds the instance
    proxy.inject(Fault.ERROR_AFTER_FORWARD, times=1, error_status=status)
    with faulty_gateway.client() as http:
        answer = http.post(
            START.format("gateway-waiting"), json={"businessKey": business_key}
        )
        replay = http.post(
            START.format("gateway-waiting"), json={"businessKey": business_key}
        )

    [instance] = engine_instances(business_key)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Idempotency-Status"] == "adopted"
    assert answer.json()["id"] == instance
    assert replay.headers["Idempotency-Status"] == "replayed"


def test_engine_error_without_an_instance_is_released_after_one_lookup(
    faulty_gateway: Any,
    proxy: EngineProxy,
    business_key: str,
    engine_instances: Callable[[str], list[str]],
    reservations: Callable[[str], list[dict[str, Any]]],
) -> None:
    # a 503 in the engine's error shape, and the start never reached the engine
    error = b'{"type":"ProcessEngineException","message":"engine is overloaded"}'
    proxy.inject(Fault.HOLD, times=1)
    proxy.release_held((503, error))
    with faulty_gateway.client() as http:
        refused = http.post(
            START.format("gateway-waiting"), json={"businessKey": business_key}
        )
        paths = [recorded.path for recorded in proxy.requests()]
        assert reservations(business_key) == []
        retry = http.post(
            START.format("gateway-waiting"), json={"businessKey": business_key}
        )

    assert refused.status_code == 503
    assert refused.json()["message"] == "engine is overloaded"
    assert not [path for path in paths if path.endswith("/start")]
    assert [path for path in paths if "/history/process-instance?" in path]
    assert retry.headers["Idempotency-Status"] == "created"
    assert engine_instances(business_key) == [retry.json()["id"]]
