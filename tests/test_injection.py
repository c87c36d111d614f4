"""Hostile input: odd Unicode, NUL, CR/LF, deep nesting, requests aimed elsewhere."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.proxy import EngineProxy
from tests.test_paths import send_raw
from tests.test_starts import deploy

START = "/process-definition/key/gateway-waiting/start"


@pytest.mark.parametrize(
    "suffix",
    ["订单-①", "\u00e9", "e\u0301", "\u202eevil", "🧾", "a\u200bb", "ǅ", "ﬁ"],
)
def test_unicode_businesskeys_are_kept_exactly_as_sent(
    client: httpx.Client, engine_http: httpx.Client, suffix: str
) -> None:
    business_key = f"u-{uuid.uuid4().hex[:6]}-{suffix}"

    answer = client.post(START, json={"businessKey": business_key})

    assert answer.status_code == 200, answer.text
    assert answer.json()["businessKey"] == business_key
    found = engine_http.get(
        "/history/process-instance", params={"processInstanceBusinessKey": business_key}
    ).json()
    assert [item["businessKey"] for item in found] == [business_key]


def test_composed_and_decomposed_keys_are_different_reservations(
    client: httpx.Client,
) -> None:
    run = uuid.uuid4().hex[:6]

    composed = client.post(START, json={"businessKey": f"{run}-\u00e9"})
    decomposed = client.post(START, json={"businessKey": f"{run}-e\u0301"})

    assert composed.headers["Idempotency-Status"] == "created"
    assert decomposed.headers["Idempotency-Status"] == "created"
    assert composed.json()["id"] != decomposed.json()["id"]


def test_a_unicode_tenant_id_reaches_the_engine_intact(
    client: httpx.Client, business_key: str
) -> None:
    key = f"uni-{uuid.uuid4().hex[:8]}"
    tenant = "tënant-ü"
    deploy(client, key, tenant=tenant)

    answer = client.post(
        f"/process-definition/key/{key}/tenant-id/{tenant}/start",
        json={"businessKey": business_key},
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["tenantId"] == tenant


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"businessKey": "nul-\u0000-key"}, "NUL"),
        ({"businessKey": "deep"}, "nested"),
        (
            {"businessKey": "long", "variables": {"n" * 300: {"value": 1}}},
            "variable name",
        ),
    ],
)
def test_bodies_past_a_limit_are_refused_before_reserving(
    proxied_gateway: Any,
    proxy: EngineProxy,
    reservations: Callable[[str], list[dict[str, Any]]],
    body: dict[str, Any],
    reason: str,
) -> None:
    if reason == "nested":
        nested: Any = 1
        for _ in range(40):
            nested = [nested]
        body = {"businessKey": "deep", "variables": {"v": {"value": nested}}}

    with proxied_gateway.client() as http:
        answer = http.post(START, json=body)

    assert answer.status_code == 400
    assert answer.json()["type"] == "InvalidRequestException"
    assert reason.split(maxsplit=1)[0].lower() in answer.json()["message"].lower()
    # PostgreSQL can't even be asked about a key with NUL in it
    assert reservations(body["businessKey"].replace("\x00", "")) == []
    assert proxy.requests() == []


def test_crlf_in_a_businesskey_stays_inside_the_json_and_the_log_line(
    client: httpx.Client, business_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    key = f"{business_key}\r\nX-Injected: yes"

    with caplog.at_level(logging.INFO, logger="gateway"):
        answer = client.post(START, json={"businessKey": key})

    assert answer.status_code == 200
    assert "X-Injected" not in answer.headers
    assert answer.json()["businessKey"] == key
    lines = [record.getMessage() for record in caplog.records]
    mentions = [line for line in lines if business_key in line]
    assert mentions
    assert all("\r" not in line and "\n" not in line for line in mentions)


def test_an_absolute_request_target_cannot_reach_another_host(
    proxied_gateway: Any, proxy: EngineProxy, business_key: str
) -> None:
    with socket.socket() as canary:
        canary.bind(("127.0.0.1", 0))
        canary.listen()
        canary.settimeout(0.5)
        host = f"127.0.0.1:{canary.getsockname()[1]}"
        targets = [
            f"http://{host}/engine-rest{START}",
            f"http://{host}/engine-rest/process-definition",
        ]
        body = f'{{"businessKey": "{business_key}"}}'.encode()
        statuses = [send_raw(proxied_gateway.url, target, body) for target in targets]
        with pytest.raises(TimeoutError):
            canary.accept()

    assert all(status < 500 for status in statuses)
    # whatever was forwarded went to the configured engine, through the proxy
    assert all(r.path.startswith("/engine-rest/") for r in proxy.requests())
