"""Path segments that try to escape never reach another engine endpoint."""

from __future__ import annotations

import re
import socket
from typing import Any

import pytest

from tests.support.proxy import EngineProxy

START = re.compile(
    r"^/engine-rest(/engine/[^/]+)?/process-definition/key/[^/]+(/tenant-id/[^/]+)?/start$"
)

HOSTILE_PATHS = [
    "/engine-rest/process-definition/key/..%2F..%2Fdeployment%2Fcreate/start",
    "/engine-rest/process-definition/key/%2E%2E/start",
    "/engine-rest/process-definition/key/%2e%2e%2fprocess-instance/start",
    "/engine-rest/process-definition/key/a%5C..%5Cb/start",
    "/engine-rest/process-definition/key/a%0D%0AX-Injected:%201/start",
    "/engine-rest/process-definition/key/a%00b/start",
    "/engine-rest/process-definition/key/gateway-waiting/start/",
    "/engine-rest/process-definition/key/gateway-waiting/start;x=1",
    "/engine-rest//process-definition/key/gateway-waiting/start",
    "/engine-rest/process-definition/key/x/../../../deployment/create",
    "/engine-rest/engine/..%2F/process-definition/key/gateway-waiting/start",
    "/engine-rest/engine/default/../process-definition/key/gateway-waiting/start",
    "/engine-rest/process-definition/key/gateway-waiting/tenant-id/..%2Fx/start",
    "/engine-rest/../actuator/health",
    "/engine-rest/process-definition/key/a;b/start",
]


def send_raw(url: str, path: str, body: bytes) -> int:
    """Send a request with the path exactly as given, as a hostile client would."""
    host, port = url.removeprefix("http://").split(":")
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        status_line = sock.makefile("rb").readline()
    return int(status_line.split()[1])


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_hostile_path_reaches_no_other_engine_endpoint(
    path: str, proxied_gateway: Any, proxy: EngineProxy, business_key: str
) -> None:
    status = send_raw(
        proxied_gateway.url, path, f'{{"businessKey": "{business_key}"}}'.encode()
    )

    assert status in (400, 404), path
    for recorded in proxy.requests():
        assert START.match(recorded.path.split("?")[0]), recorded.path
