"""Every other request under the base path passes through to the engine."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx

from tests.test_starts import deploy


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
