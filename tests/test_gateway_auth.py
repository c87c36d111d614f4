"""The gateway's own API keys, for engines without authentication."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateway.config import load_settings
from gateway.errors import ConfigError
from tests.conftest import GATEWAY_API_KEYS
from tests.support.proxy import EngineProxy
from tests.support.proxy import Fault

START = "/process-definition/key/gateway-waiting/start"
KEYS = GATEWAY_API_KEYS


@pytest.fixture
def keyed_gateway(proxy: EngineProxy, start_gateway: Callable[..., Any]) -> Any:
    return start_gateway(engine_url=proxy.url, api_keys=KEYS)


def post(gateway: Any, headers: dict[str, str], body: dict[str, Any]) -> httpx.Response:
    with gateway.client() as http:
        return http.post(START, json=body, headers=headers)


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-API-Key": "not-a-key"}, {"Authorization": "Bearer not-a-key"}],
)
def test_a_request_without_a_valid_key_is_refused_before_anything_happens(
    keyed_gateway: Any,
    proxy: EngineProxy,
    business_key: str,
    reservations: Callable[[str], list[dict[str, Any]]],
    headers: dict[str, str],
) -> None:
    answer = post(keyed_gateway, headers, {"businessKey": business_key})
    with keyed_gateway.client() as http:
        passed = http.get("/process-definition", headers=headers)

    assert answer.status_code == 401
    assert answer.json()["type"] == "AuthenticationException"
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert passed.status_code == 401
    assert reservations(business_key) == []
    assert proxy.requests() == []


def test_the_caller_is_part_of_the_identity(
    keyed_gateway: Any,
    proxy: EngineProxy,
    business_key: str,
    count_instances: Callable[[str], int],
    reservations: Callable[[str], list[dict[str, Any]]],
) -> None:
    body = {"businessKey": business_key}
    one = {"X-API-Key": KEYS["app-one"]}
    two = {"Authorization": f"Bearer {KEYS['app-two']}"}

    first = post(keyed_gateway, one, body)
    replay = post(keyed_gateway, one, body)
    other = post(keyed_gateway, two, body)

    assert first.headers["Idempotency-Status"] == "created"
    assert replay.headers["Idempotency-Status"] == "replayed"
    # another client's businessKeys are its own
    assert other.headers["Idempotency-Status"] == "created"
    assert other.json()["id"] != first.json()["id"]
    assert count_instances(business_key) == 2
    assert len(reservations(business_key)) == 2
    # the keys never reach the engine
    for recorded in proxy.requests():
        assert "X-API-Key" not in recorded.headers
        assert "Bearer" not in recorded.headers.get("Authorization", "")


def test_a_lost_answer_adopts_the_callers_own_instance_not_another_callers(
    keyed_gateway: Any,
    proxy: EngineProxy,
    business_key: str,
    engine_instances: Callable[[str], list[str]],
) -> None:
    body = {"businessKey": business_key}
    one = {"X-API-Key": KEYS["app-one"]}
    two = {"X-API-Key": KEYS["app-two"]}
    first = post(keyed_gateway, one, body).json()["id"]

    # app-two's start creates its instance, but the answer is lost; the lookup
    # finds both callers' instances, app-one's first
    proxy.inject(Fault.DROP_RESPONSE, times=1)
    adopted = post(keyed_gateway, two, body)
    replay = post(keyed_gateway, two, body)

    instances = engine_instances(business_key)
    assert len(instances) == 2
    [own] = [instance for instance in instances if instance != first]
    assert adopted.status_code == 200, adopted.text
    assert adopted.headers["Idempotency-Status"] == "adopted"
    assert adopted.json()["id"] == own
    assert replay.json()["id"] == own
    assert post(keyed_gateway, one, body).json()["id"] == first


@pytest.mark.parametrize("value", ["nokey", "app=short", "=key-0123456789abcdef"])
def test_bad_api_keys_are_refused_without_echoing_them(value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({"GATEWAY_API_KEYS": value})

    assert "GATEWAY_API_KEYS" in raised.value.message
    assert value not in raised.value.message
