"""An HTTP proxy between the gateway and the real engine, for recording and faults.

It records every request that it forwards, so a test can prove what reached the
engine. Faults make it lose answers the way a real network does.
"""

from __future__ import annotations

import dataclasses
import enum
import http.client
import socket
import struct
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from urllib.parse import urlsplit


class Fault(enum.Enum):
    """What the proxy does to the next matching request."""

    NONE = "none"
    DROP_RESPONSE = "drop-response"  # forward, then close without answering
    DELAY_RESPONSE = "delay-response"  # forward, answer only after a delay
    RESET_BEFORE_FORWARD = "reset-before-forward"  # RST, nothing forwarded
    BAD_GATEWAY = "bad-gateway"  # answer 502 without forwarding
    HOLD = "hold"  # forward only when the test releases it
    ERROR_AFTER_FORWARD = "error-after-forward"  # forward, then an engine error


@dataclasses.dataclass
class Recorded:
    method: str
    path: str
    body: bytes
    headers: dict[str, str]


class EngineProxy:
    """Forward to the engine; record requests; inject faults on start calls."""

    def __init__(self, engine_url: str) -> None:
        parts = urlsplit(engine_url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.engine_path = parts.path
        self.recorded: list[Recorded] = []
        self.lock = threading.Lock()
        self.fault = Fault.NONE
        self.fault_matches = "/start"
        self.delay = 0.0
        # the status of the engine-shaped error that ERROR_AFTER_FORWARD answers
        self.error_status = 500
        self.remaining: int | None = None
        # what a held request does once released: forward, discard, or an answer
        self.on_release: tuple[int, bytes] | str = "forward"
        self.forwarded = (
            threading.Event()
        )  # set when a faulted request reached the engine
        self.arrived = threading.Event()  # set when a faulted request arrived
        self.answered = threading.Event()  # set when a held request got its answer
        self.release = threading.Event()
        # asked before each forward; False answers 502 and forwards nothing
        self.before_forward: Callable[[Recorded], bool] | None = None
        handler = _handler(self)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{self.engine_path}"

    def start(self) -> EngineProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def inject(
        self,
        fault: Fault,
        matches: str = "/start",
        delay: float = 0.0,
        times: int | None = None,
        error_status: int = 500,
    ) -> None:
        """Apply a fault to requests whose path contains `matches`, `times` times."""
        self.fault = fault
        self.fault_matches = matches
        self.delay = delay
        self.error_status = error_status
        self.remaining = times
        self.on_release = "forward"
        self.forwarded.clear()
        self.arrived.clear()
        self.answered.clear()
        self.release.clear()

    def release_held(self, action: tuple[int, bytes] | str = "forward") -> None:
        """Let held requests go: forward, discard, or answer with (status, body)."""
        self.on_release = action
        self.release.set()

    def take_fault(self, path: str) -> Fault:
        """Return the fault for a request, counting down limited faults."""
        with self.lock:
            if self.fault is Fault.NONE or self.fault_matches not in path:
                return Fault.NONE
            if self.remaining is not None:
                if self.remaining <= 0:
                    return Fault.NONE
                self.remaining -= 1
            return self.fault

    def clear(self) -> None:
        self.inject(Fault.NONE)
        with self.lock:
            self.recorded.clear()

    def requests(self) -> list[Recorded]:
        with self.lock:
            return list(self.recorded)


def _handler(proxy: EngineProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {name: value for name, value in self.headers.items()}
            fault = proxy.take_fault(self.path)
            if self._answered_before_forward(fault):
                return

            request = Recorded(self.command, self.path, body, headers)
            if proxy.before_forward is not None and not proxy.before_forward(request):
                self._answer(502, {"Content-Type": "text/plain"}, b"not forwarded")
                return
            with proxy.lock:
                proxy.recorded.append(request)
            status, response_headers, response_body = self._forward(body, headers)
            if fault is not Fault.NONE:
                proxy.forwarded.set()

            if fault is Fault.ERROR_AFTER_FORWARD:
                error = b'{"type":"ProcessEngineException","message":"after commit"}'
                status = proxy.error_status
                self._answer(status, {"Content-Type": "application/json"}, error)
                return
            if fault is Fault.DROP_RESPONSE:
                self._reset()
                return
            if fault is Fault.DELAY_RESPONSE:
                proxy.release.wait(timeout=proxy.delay)
            self._answer(status, response_headers, response_body)
            if fault is not Fault.NONE:
                proxy.answered.set()

        def _answered_before_forward(self, fault: Fault) -> bool:
            """Apply a fault that ends the request before it is forwarded."""
            if fault is Fault.RESET_BEFORE_FORWARD:
                proxy.arrived.set()
                self._reset()
                return True
            if fault is Fault.BAD_GATEWAY:
                proxy.arrived.set()
                self._answer(502, {"Content-Type": "text/plain"}, b"bad gateway")
                return True
            if fault is not Fault.HOLD:
                return False

            proxy.arrived.set()
            proxy.release.wait(timeout=120)
            if proxy.on_release == "discard":
                self._reset()
                return True
            if isinstance(proxy.on_release, tuple):
                status, answer = proxy.on_release
                self._answer(status, {"Content-Type": "application/json"}, answer)
                proxy.answered.set()
                return True
            return False

        def _forward(
            self, body: bytes, headers: dict[str, str]
        ) -> tuple[int, dict[str, str], bytes]:
            connection = http.client.HTTPConnection(*proxy.upstream, timeout=120)
            try:
                headers = {
                    k: v for k, v in headers.items() if k.lower() != "connection"
                }
                connection.request(
                    self.command, self.path, body=body or None, headers=headers
                )
                response = connection.getresponse()
                data = response.read()
                kept = {
                    k: v
                    for k, v in response.getheaders()
                    if k.lower()
                    not in ("transfer-encoding", "connection", "content-length")
                }
                return response.status, kept, data
            finally:
                connection.close()

        def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                # the gateway is gone (killed, or it gave up); nobody reads this
                self.close_connection = True

        def _reset(self) -> None:
            # SO_LINGER with a zero timeout makes close() send a RST
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            self.connection.close()
            self.close_connection = True

        do_GET = _handle  # noqa: N815 -- the name http.server looks up
        do_POST = _handle  # noqa: N815 -- the name http.server looks up
        do_PUT = _handle  # noqa: N815 -- the name http.server looks up
        do_DELETE = _handle  # noqa: N815 -- the name http.server looks up
        do_PATCH = _handle  # noqa: N815 -- the name http.server looks up
        do_OPTIONS = _handle  # noqa: N815 -- the name http.server looks up
        do_HEAD = _handle  # noqa: N815 -- the name http.server looks up

    return Handler
