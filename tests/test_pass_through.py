"""Every other request under the base path passes through to the engine."""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from tests.support.proxy import EngineProxy
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
