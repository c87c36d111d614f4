"""Each limit on a start body holds at its configured value, not only at the default.

A start right at a limit is created. One step past it is refused in the engine's
error shape, with nothing reserved and nothing sent to the engine.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.proxy import EngineProxy

START = "/process-definition/key/gateway-waiting/start"


@dataclasses.dataclass(frozen=True)
class Limit:
    """A setting with a small value, and how to build a start of a given size."""

    setting: str
    value: int
    # the size to build, and a unique prefix; returns the businessKey and the body
    build: Callable[[int, str], tuple[str, bytes]]
    refused_with: int = 400
    chunked: bool = False


def nested(depth: int, unique: str) -> tuple[str, bytes]:
    """Build a start whose containers nest `depth` levels, the object included."""
    # the engine ignores fields it doesn't know, so the padding can't upset it
    pad: Any = 0
    for _ in range(depth - 1):
        pad = [pad]
    return unique, json.dumps({"businessKey": unique, "pad": pad}).encode()


def variable_name(length: int, unique: str) -> tuple[str, bytes]:
    """Build a start with one variable whose name has `length` characters."""
    name = "v" * length
    body = {"businessKey": unique, "variables": {name: {"value": 1, "type": "Integer"}}}
    return unique, json.dumps(body).encode()


def business_key(filler: str) -> Callable[[int, str], tuple[str, bytes]]:
    """Return a builder of a start whose businessKey has that many characters."""

    def build(length: int, unique: str) -> tuple[str, bytes]:
        key = unique + filler * (length - len(unique))
        # ensure_ascii=False: the limit counts characters, not the bytes of UTF-8
        return key, json.dumps({"businessKey": key}, ensure_ascii=False).encode()

    return build


def body_size(size: int, unique: str) -> tuple[str, bytes]:
    """Build a start body of exactly `size` bytes."""
    empty = json.dumps({"businessKey": unique, "pad": ""}).encode()
    padded = {"businessKey": unique, "pad": "x" * (size - len(empty))}
    return unique, json.dumps(padded).encode()


LIMITS = {
    "json depth": Limit("max_json_depth", 4, nested),
    "variable name": Limit("max_variable_name_length", 12, variable_name),
    "businessKey": Limit("max_business_key_length", 24, business_key("k")),
    "businessKey in characters, not bytes": Limit(
        "max_business_key_length", 24, business_key("\u00fc")
    ),
    "body size": Limit("max_body_bytes", 200, body_size, refused_with=413),
    "body size, sent chunked": Limit(
        "max_body_bytes", 200, body_size, refused_with=413, chunked=True
    ),
}


@pytest.fixture
def unique() -> str:
    return f"limit-{uuid.uuid4().hex[:10]}"


def post(gateway: Any, body: bytes, chunked: bool) -> httpx.Response:
    # an iterator makes httpx send the body chunked, without a Content-Length
    content: bytes | Iterator[bytes] = iter([body]) if chunked else body
    with gateway.client() as http:
        return http.post(
            START, content=content, headers={"Content-Type": "application/json"}
        )


@pytest.mark.parametrize("limit", LIMITS.values(), ids=LIMITS.keys())
def test_a_start_right_at_the_limit_is_created(
    limit: Limit,
    unique: str,
    proxy: EngineProxy,
    start_gateway: Callable[..., Any],
    reservations: Callable[[str], list[dict[str, Any]]],
) -> None:
    gateway = start_gateway(engine_url=proxy.url, **{limit.setting: limit.value})
    key, body = limit.build(limit.value, unique)

    answer = post(gateway, body, limit.chunked)

    assert answer.status_code == 200, answer.text
    assert answer.headers["Idempotency-Status"] == "created"
    assert [row["state"] for row in reservations(key)] == ["started"]
    assert [(r.path, r.body) for r in proxy.requests()] == [
        (f"/engine-rest{START}", body)
    ]


@pytest.mark.parametrize("limit", LIMITS.values(), ids=LIMITS.keys())
def test_a_start_one_past_the_limit_is_refused_before_anything_happens(
    limit: Limit,
    unique: str,
    proxy: EngineProxy,
    start_gateway: Callable[..., Any],
    reservations: Callable[[str], list[dict[str, Any]]],
) -> None:
    gateway = start_gateway(engine_url=proxy.url, **{limit.setting: limit.value})
    key, body = limit.build(limit.value + 1, unique)

    answer = post(gateway, body, limit.chunked)

    assert answer.status_code == limit.refused_with, answer.text
    error = answer.json()
    assert isinstance(error["type"], str)
    assert isinstance(error["message"], str)
    assert error["message"]
    assert reservations(key) == []
    assert proxy.requests() == []


def test_a_long_variable_name_of_a_start_instruction_reserves_nothing(
    unique: str,
    proxied_gateway: Any,
    proxy: EngineProxy,
    reservations: Callable[[str], list[dict[str, Any]]],
    engine_instances: Callable[[str], list[str]],
) -> None:
    # "wait" is the model's user task, so the engine would start there for real
    instruction = {
        "type": "startBeforeActivity",
        "activityId": "wait",
        "variables": {"v" * 300: {"value": 1, "type": "Integer"}},
    }
    body = json.dumps({"businessKey": unique, "startInstructions": [instruction]})

    answer = post(proxied_gateway, body.encode(), chunked=False)

    assert answer.status_code == 400, answer.text
    error = answer.json()
    assert set(error) == {"type", "message", "code"}
    assert error["type"] == "InvalidRequestException"
    assert "start instruction 0" in error["message"]
    assert reservations(unique) == []
    assert proxy.requests() == []
    assert engine_instances(unique) == []
