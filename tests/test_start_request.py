"""Malformed starts are refused before anything is reserved or forwarded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from gateway.errors import InvalidRequest
from gateway.start_request import StartTarget
from gateway.start_request import fingerprint
from gateway.start_request import parse_start
from tests.support.proxy import EngineProxy

KEY = "gateway-waiting"
TARGET = StartTarget("default", process_definition_key=KEY)
INSTRUCTION = {"type": "startBeforeActivity", "activityId": "wait"}


def bodies(business_key: str) -> list[tuple[str, bytes, int]]:
    bk = business_key
    return [
        ("malformed JSON", f'{{"businessKey": "{bk}"'.encode(), 400),
        ("not an object", b"[1, 2, 3]", 400),
        ("a string", b'"hello"', 400),
        ("no businessKey", b'{"variables": {}}', 400),
        ("empty body", b"", 400),
        ("businessKey not a string", b'{"businessKey": 5}', 400),
        (
            "variables not an object",
            f'{{"businessKey": "{bk}", "variables": []}}'.encode(),
            400,
        ),
        (
            "variable not an object",
            f'{{"businessKey": "{bk}", "variables": {{"a": 5}}}}'.encode(),
            400,
        ),
        (
            "flag not a boolean",
            f'{{"businessKey": "{bk}", "withVariablesInReturn": "yes"}}'.encode(),
            400,
        ),
        (
            "businessKey of 256 characters",
            f'{{"businessKey": "{"k" * 256}"}}'.encode(),
            400,
        ),
        (
            "body over the limit",
            f'{{"businessKey": "{bk}", "pad": "{"x" * 5000}"}}'.encode(),
            413,
        ),
        ("invalid UTF-8", b'{"businessKey": "\xff\xfe"}', 400),
    ]


@pytest.mark.parametrize("case", [name for name, _, _ in bodies("order-1")])
def test_malformed_start_is_refused_and_nothing_reserved(
    case: str,
    proxied_gateway: Any,
    proxy: EngineProxy,
    business_key: str,
    reservations: Callable[[str], list[dict[str, Any]]],
) -> None:
    [(name, body, status)] = [each for each in bodies(business_key) if each[0] == case]

    with proxied_gateway.client() as http:
        answer = http.post(
            f"/process-definition/key/{KEY}/start",
            content=body,
            headers={"Content-Type": "application/json"},
        )

    assert answer.status_code == status, name
    error = answer.json()
    assert set(error) >= {"type", "message", "code"}, name
    assert error["message"]
    assert reservations(business_key) == []
    assert reservations("k" * 256) == []
    assert proxy.requests() == [], name


def test_a_businesskey_of_255_characters_is_accepted() -> None:
    target = StartTarget("default", process_definition_key=KEY)

    start = parse_start(target, f'{{"businessKey": "{"k" * 255}"}}'.encode(), True)

    assert start.business_key == "k" * 255


def test_without_a_required_businesskey_the_start_is_forwarded_unprotected(
    proxy: EngineProxy, start_gateway: Callable[..., Any], engine_http: httpx.Client
) -> None:
    gateway = start_gateway(engine_url=proxy.url, require_business_key=False)

    with gateway.client() as http:
        answer = http.post(f"/process-definition/key/{KEY}/start", json={})

    assert answer.status_code == 200
    assert "Idempotency-Status" not in answer.headers
    assert [r.path for r in proxy.requests()] == [
        f"/engine-rest/process-definition/key/{KEY}/start"
    ]


def instructed(variables: Any) -> dict[str, Any]:
    """Return a start instruction that carries these variables."""
    return {**INSTRUCTION, "variables": variables}


@pytest.mark.parametrize(
    ("instructions", "named"),
    [
        (INSTRUCTION, "'startInstructions' must be an array"),
        ([None], "start instruction 0 must be an object"),
        (["wait"], "start instruction 0 must be an object"),
        ([instructed([])], "start instruction 0 'variables' must be an object"),
        (
            [instructed({"v" * 256: {"value": 1, "type": "Integer"}})],
            "a variable name of start instruction 0 is 256 characters long",
        ),
        (
            [INSTRUCTION, instructed({"v" * 300: {"value": 1}})],
            "a variable name of start instruction 1 is 300 characters long",
        ),
        (
            [instructed({"a": 5})],
            "variable 'a' of start instruction 0 must be an object",
        ),
        (
            [instructed({"a": {"value": 1, "type": 5}})],
            "variable 'a' of start instruction 0 field 'type' must be a string",
        ),
        (
            [instructed({"a": {"value": 1, "valueInfo": []}})],
            "variable 'a' of start instruction 0 field 'valueInfo' must be an object",
        ),
    ],
    ids=[
        "instructions not an array",
        "a null instruction",
        "an instruction not an object",
        "instruction variables not an object",
        "instruction variable name of 256 characters",
        "second instruction variable name of 300 characters",
        "instruction variable not an object",
        "instruction variable type not a string",
        "instruction variable valueInfo not an object",
    ],
)
def test_a_malformed_start_instruction_is_refused(
    instructions: Any, named: str
) -> None:
    body = orjson.dumps({"businessKey": "order-1", "startInstructions": instructions})

    with pytest.raises(InvalidRequest) as refused:
        parse_start(TARGET, body, True)

    assert str(refused.value).startswith(named)


def test_an_instruction_variable_name_of_255_characters_is_accepted() -> None:
    variables = {"v" * 255: {"value": 1, "type": "Integer"}, "a": {"value": None}}
    body = {"businessKey": "order-1", "startInstructions": [instructed(variables)]}

    start = parse_start(TARGET, orjson.dumps(body), True)

    assert start.fingerprint == fingerprint(body)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (
            {"businessKey": "a", "variables": {"x": {"value": 1}}},
            {"variables": {"x": {"value": 1}}, "businessKey": "a"},
        ),
        ({"a": [1, {"b": 2, "c": 3}]}, {"a": [1, {"c": 3, "b": 2}]}),
    ],
)
def test_fingerprint_ignores_key_order(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    assert fingerprint(first) == fingerprint(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"businessKey": "a"}, {"businessKey": "b"}),
        ({"a": [1, 2]}, {"a": [2, 1]}),
        ({"a": "\u00e9"}, {"a": "e\u0301"}),  # Unicode is kept as sent, not normalized
    ],
)
def test_fingerprint_tells_different_content_apart(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    assert fingerprint(first) != fingerprint(second)
