"""Which view answers which method on the gateway's paths."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.proxy import EngineProxy


@pytest.mark.parametrize(
    "path",
    [
        "/process-definition/key/gateway-waiting/start",
        "/process-definition/key/gateway-waiting/tenant-id/tenant-one/start",
        "/process-definition/gateway-waiting:1:1/start",
        "/engine/default/process-definition/key/gateway-waiting/start",
    ],
    ids=["by key", "by key and tenant", "by id", "named engine"],
)
def test_options_on_a_start_path_is_answered_by_the_engine(
    proxied_gateway: Any, proxy: EngineProxy, engine_http: httpx.Client, path: str
) -> None:
    # a browser's CORS preflight before it posts a start
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }

    with proxied_gateway.client() as http:
        answer = http.options(path, headers=preflight)
    direct = engine_http.options(path, headers=preflight)

    assert [(r.method, r.path) for r in proxy.requests()] == [
        ("OPTIONS", f"/engine-rest{path}")
    ]
    assert answer.status_code == direct.status_code
    assert answer.headers.get("Allow") == direct.headers.get("Allow")
    assert answer.content == direct.content


@pytest.mark.parametrize(
    "path",
    ["/engine-rest/x", "/engine-rest/process-definition/key/gateway-waiting/start"],
    ids=["pass-through", "start"],
)
def test_a_method_that_no_view_serves_gets_405_with_allow(
    client: httpx.Client, path: str
) -> None:
    # RFC 9110, section 15.5.6: a 405 must list the methods that the path serves
    answer = client.request("TRACE", path)

    assert answer.status_code == 405
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json()["type"] == "MethodNotAllowed"
    allowed = {method.strip() for method in answer.headers["Allow"].split(",")}
    assert {"GET", "POST", "OPTIONS"} <= allowed
    assert "TRACE" not in allowed
