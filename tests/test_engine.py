"""The engine client's handling of what comes back over the wire."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

import pytest

from gateway.config import Settings
from gateway.engine import EngineClient


class _LowercaseHeaders(BaseHTTPRequestHandler):
    """Answer with lowercase header names, as RFC 9110 allows and some proxies do."""

    def do_GET(self) -> None:
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("www-authenticate", 'Basic realm="engine"')
        self.send_header("WWW-Authenticate", 'Bearer realm="engine"')
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def lowercase_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LowercaseHeaders)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/engine-rest"
    server.shutdown()
    server.server_close()


def test_header_names_are_looked_up_without_regard_to_case_and_repeats_are_joined(
    lowercase_server: str,
) -> None:
    client = EngineClient(Settings(engine_url=lowercase_server))

    answer = client.get(f"{lowercase_server}/process-instance/x", {})

    assert answer.status == 401
    # RFC 9110, section 11.6.1: several challenges, all passed on
    assert (
        answer.headers.get("WWW-Authenticate")
        == 'Basic realm="engine", Bearer realm="engine"'
    )
    assert answer.headers.get("Content-Type") == "application/json"
