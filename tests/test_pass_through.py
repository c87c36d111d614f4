"""Every other request under the base path passes through to the engine."""

from __future__ import annotations

import hashlib
import logging
import random
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from gateway import links
from tests.support.proxy import EngineProxy
from tests.support.proxy import Fault
from tests.test_starts import deploy

LARGE_RESOURCE_BYTES = 8 * 1024 * 1024
# RFC 9110, section 7.6.1: X-Foo is hop-by-hop only because Connection lists it
HOP_BY_HOP_REQUEST_HEADERS = {
    "Connection": "close, X-Foo",
    "X-Foo": "1",
    "Keep-Alive": "timeout=5",
    "TE": "trailers",
    "Upgrade": "websocket",
    "Proxy-Authorization": "Basic cHJveHk6c2VjcmV0",
}
ENGINE_BASE = b"http://engine:8080/engine-rest"
GATEWAY_BASE = b"https://gateway.example/engine-rest"
# a start answer as the engine writes it, with a variable that holds its own URL
CALLBACK = b'"callback":{"type":"String","value":"http://engine:8080/engine-rest/task"'
ANSWER = (
    b'{"links":[{"method":"GET",'
    b'"href":"http://engine:8080/engine-rest/process-instance/7","rel":"self"}],'
    b'"variables":{' + CALLBACK + b',"valueInfo":{}}}}'
)
REWRITTEN = (
    b'{"links":[{"method":"GET",'
    b'"href":"https://gateway.example/engine-rest/process-instance/7","rel":"self"}],'
    b'"variables":{' + CALLBACK + b',"valueInfo":{}}}}'
)
HREF_AT = ANSWER.index(b'"href"')


def test_client_deploys_and_lists_definitions_through_the_gateway(
    client: httpx.Client, engine_http: httpx.Client
) -> None:
    key = f"passed-{uuid.uuid4().hex[:8]}"

    deployment = deploy(client, key)
    listed = client.get("/process-definition", params={"key": key})

    assert listed.status_code == 200
    assert [d["key"] for d in listed.json()] == [key]
    assert engine_http.get(f"/deployment/{deployment['id']}").status_code == 200


def test_pass_through_rewrites_links_to_the_gateway(
    client: httpx.Client, gateway: Any
) -> None:
    key = f"linked-{uuid.uuid4().hex[:8]}"

    deployment = deploy(client, key)

    hrefs = [link["href"] for link in deployment["links"]]
    assert hrefs and all(
        href.startswith(f"{gateway.url}/engine-rest/") for href in hrefs
    )


def test_rewrite_changes_only_hrefs_that_start_at_the_engine() -> None:
    assert links.rewrite(ANSWER, ENGINE_BASE, GATEWAY_BASE) == REWRITTEN


@pytest.mark.parametrize("size", [1, 7, 64, len(ANSWER)])
def test_rewrite_stream_matches_rewrite_at_any_chunk_size(size: int) -> None:
    chunks = [ANSWER[i : i + size] for i in range(0, len(ANSWER), size)]

    streamed = b"".join(links.rewrite_stream(chunks, ENGINE_BASE, GATEWAY_BASE))

    assert streamed == REWRITTEN


@pytest.mark.parametrize(
    "cut",
    [HREF_AT + 1, HREF_AT + 7, HREF_AT + 8, HREF_AT + 20, HREF_AT + 37],
    ids=["in the key", "before the value", "at the url", "in the url", "at its end"],
)
def test_rewrite_stream_rewrites_an_href_split_across_two_chunks(cut: int) -> None:
    chunks = [ANSWER[:cut], ANSWER[cut:]]

    streamed = b"".join(links.rewrite_stream(chunks, ENGINE_BASE, GATEWAY_BASE))

    assert streamed == REWRITTEN


def test_pass_through_keeps_a_variable_that_holds_the_engine_url(
    client: httpx.Client, engine_http: httpx.Client, engine_url: str
) -> None:
    callback = {"value": f"{engine_url}/task/1", "type": "String"}
    started = engine_http.post(
        "/process-definition/key/gateway-waiting/start",
        json={"variables": {"callback": callback}},
    )
    path = f"/process-instance/{started.json()['id']}/variables"

    passed = client.get(path)

    assert passed.status_code == 200, passed.text
    assert passed.content == engine_http.get(path).content
    assert passed.json()["callback"]["value"] == f"{engine_url}/task/1"


def test_pass_through_keeps_status_and_query(client: httpx.Client) -> None:
    missing = client.get("/process-instance/does-not-exist")
    counted = client.get("/process-definition/count", params={"key": "gateway-waiting"})

    assert missing.status_code == 404
    assert missing.json()["type"]
    assert counted.json()["count"] >= 1


def test_pass_through_can_be_switched_off(
    start_gateway: Callable[..., Any],
) -> None:
    gateway = start_gateway(pass_through=False)

    with gateway.client() as http:
        answer = http.get("/process-definition")

    assert answer.status_code == 404
    assert answer.json()["type"] == "NotFound"


def test_pass_through_drops_hop_by_hop_request_headers(
    proxied_gateway: Any, proxy: EngineProxy
) -> None:
    with proxied_gateway.client() as http:
        answer = http.get(
            "/process-definition/count",
            headers={**HOP_BY_HOP_REQUEST_HEADERS, "X-Trace": "abc"},
        )

    assert answer.status_code == 200, answer.text
    [reached] = [r for r in proxy.requests() if r.path.endswith("/count")]
    received = {name.lower(): value for name, value in reached.headers.items()}
    assert received["x-trace"] == "abc"
    assert not {name.lower() for name in HOP_BY_HOP_REQUEST_HEADERS} & received.keys()


@pytest.mark.parametrize("name", ["large.bin", "large.json"])
def test_pass_through_streams_a_large_resource_both_ways_intact(
    client: httpx.Client, engine_http: httpx.Client, name: str
) -> None:
    data = large_resource(name)

    uploaded = client.post(
        "/deployment/create",
        data={"deployment-name": f"large-{uuid.uuid4().hex[:8]}"},
        files={name: (name, data, "application/octet-stream")},
    )
    assert uploaded.status_code == 200, uploaded.text
    deployment = uploaded.json()["id"]
    [resource] = engine_http.get(f"/deployment/{deployment}/resources").json()
    path = f"/deployment/{deployment}/resources/{resource['id']}/data"
    with client.stream("GET", path) as answer:
        received = b"".join(answer.iter_raw())

    assert answer.status_code == 200
    assert len(received) == len(data)
    assert hashlib.sha256(received).digest() == hashlib.sha256(data).digest()
    assert engine_http.get(path).content == data


def large_resource(name: str) -> bytes:
    """Return a deployment resource many times the gateway's 64 KiB chunk size."""
    rng = random.Random(name)
    if name.endswith(".json"):
        # a JSON answer goes through the gateway's link rewriting, chunk by chunk
        items = [rng.randbytes(48).hex() for _ in range(LARGE_RESOURCE_BYTES // 100)]
        return orjson.dumps({"items": items})
    # incompressible, so no layer can shrink it on the way
    return rng.randbytes(LARGE_RESOURCE_BYTES)


@pytest.mark.parametrize(
    "fault",
    [Fault.DROP_RESPONSE, Fault.DELAY_RESPONSE],
    ids=["connection dropped", "read timed out"],
)
def test_a_lost_engine_connection_does_not_tell_the_client_where_the_engine_is(
    faulty_gateway: Any,
    proxy: EngineProxy,
    caplog: pytest.LogCaptureFixture,
    fault: Fault,
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway")
    # the delay outlasts the gateway's engine timeout of FAULT_SETTINGS
    proxy.inject(fault, matches="/process-definition/count", delay=5, times=1)
    port = str(proxy.server.server_port)

    with faulty_gateway.client() as http:
        answer = http.get("/process-definition/count")

    assert answer.status_code == 502
    assert answer.json()["type"] == "EngineConnectionLost"
    assert answer.headers["Retry-After"] == "1"
    for internal in (f"127.0.0.1:{port}", port, "HTTPConnectionPool"):
        assert internal not in answer.text
    # the operator still learns what broke, under the request's id
    request_id = answer.headers["X-Request-Id"]
    assert any(
        record.levelno == logging.WARNING and request_id in record.getMessage()
        for record in caplog.records
    )
