"""Kept-alive connections to the engine: reuse, and what ends one."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

import pytest

from devenv.ports import free_port
from gateway.config import Settings
from gateway.engine import EngineClient
from gateway.engine import EngineOutcomeUnknown
from gateway.engine import EngineUnreachable


class _Server(ThreadingHTTPServer):
    """Count the connections it accepts, and close each after one answer if asked."""

    daemon_threads = True

    def __init__(
        self,
        close_after_answer: bool,
        say_close: bool,
        address: tuple[str, int] = ("127.0.0.1", 0),
    ) -> None:
        super().__init__(address, _Handler)
        self.close_after_answer = close_after_answer
        self.say_close = say_close
        self.connections = 0
        self.closed = threading.Event()
        self.together: threading.Barrier | None = None
        # set: the first request is answered late, once the test releases it
        self.hold_first: threading.Event | None = None

    def shutdown_request(self, request: object) -> None:
        # only once the socket is closed has the engine really hung up
        super().shutdown_request(request)  # type: ignore[arg-type]
        self.closed.set()


class _IPv6Server(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def do_GET(self) -> None:
        if self.server.together is not None:
            self.server.together.wait()
        held, self.server.hold_first = self.server.hold_first, None
        if held is not None:
            held.wait(10)
            # the gateway has closed this connection if it is right, and then
            # the late answer has nowhere to go
            try:
                self._answer(b'["late"]')
            except OSError:
                self.close_connection = True
            return
        self._answer(b"[]")

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.server.say_close:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        if self.server.close_after_answer:
            # an idle keep-alive connection that the server drops without a
            # word, as a server does once its keep-alive timeout has passed
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        return


def _serve(close_after_answer: bool = False, say_close: bool = False) -> _Server:
    server = _Server(close_after_answer, say_close)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def server() -> Iterator[_Server]:
    running = _serve()
    yield running
    running.shutdown()
    running.server_close()


def _client(server: _Server) -> tuple[EngineClient, str]:
    base = f"http://127.0.0.1:{server.server_port}/engine-rest"
    return EngineClient(Settings(engine_url=base)), f"{base}/process-instance"


def test_calls_one_after_another_keep_one_connection(server: _Server) -> None:
    client, url = _client(server)

    answers = [client.get(url, {}) for _ in range(5)]

    assert [answer.status for answer in answers] == [200] * 5
    assert server.connections == 1


def test_calls_at_once_get_their_own_connections_and_later_calls_reuse_them(
    server: _Server,
) -> None:
    client, url = _client(server)
    server.together = threading.Barrier(2, timeout=10)
    statuses: list[int] = []

    def call() -> None:
        statuses.append(client.get(url, {}).status)

    # the engine answers neither call until both have arrived, so the two are
    # in flight at once and can't share a connection
    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    server.together = None
    for _ in range(4):
        call()

    assert statuses == [200] * 6
    assert server.connections == 2


def test_a_call_that_timed_out_never_lends_its_connection_again(
    server: _Server,
) -> None:
    client, url = _client(server)
    release = threading.Event()
    server.hold_first = release

    with ThreadPoolExecutor(1) as pool:
        with pytest.raises(EngineOutcomeUnknown) as raised:
            client.get(url, {}, timeout=0.2)
        try:
            # the first connection still waits for its late answer: a call
            # lent it again would wait too, and then read that answer as its own
            answer = pool.submit(client.get, url, {}).result(timeout=10)
        finally:
            release.set()

    assert raised.value.timed_out is True
    assert (answer.status, answer.body) == (200, b"[]")
    assert server.connections == 2


@pytest.mark.parametrize(
    ("close_after_answer", "say_close"),
    [(True, False), (True, True)],
    ids=["dropped-while-idle", "connection-close"],
)
def test_a_connection_the_engine_closed_is_replaced_before_the_next_call(
    close_after_answer: bool, say_close: bool
) -> None:
    server = _serve(close_after_answer, say_close)
    client, url = _client(server)

    first = client.get(url, {})
    # the engine has closed its end before the next call is made
    assert server.closed.wait(5)
    second = client.get(url, {})
    server.shutdown()
    server.server_close()

    assert (first.status, second.status) == (200, 200)
    assert server.connections == 2


def test_an_ipv6_engine_address_without_a_port_is_called_on_port_80() -> None:
    try:
        server = _IPv6Server(False, False, ("::1", 80))
    except OSError as exc:
        pytest.skip(f"can't listen on [::1]:80 here: {exc}")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = "http://[::1]/engine-rest"

    answer = EngineClient(Settings(engine_url=base)).get(f"{base}/process-instance", {})
    server.shutdown()
    server.server_close()

    assert answer.status == 200
    assert server.connections == 1


def test_a_start_to_an_engine_that_refuses_connections_was_never_sent() -> None:
    base = f"http://127.0.0.1:{free_port()}/engine-rest"
    client = EngineClient(Settings(engine_url=base))

    with pytest.raises(EngineUnreachable):
        client.start(f"{base}/process-definition/key/k/start", b"{}", {})


def test_a_start_whose_answer_never_comes_is_unknown_and_sent_once() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def read_one_request_then_hang_up() -> None:
        connection, _ = listener.accept()
        received.append(connection.recv(65536))
        # the engine may have started the instance; the gateway never hears
        connection.close()
        listener.settimeout(1.0)
        with contextlib.suppress(TimeoutError):
            listener.accept()[0].close()
            received.append(b"a second connection")

    thread = threading.Thread(target=read_one_request_then_hang_up)
    thread.start()
    base = f"http://127.0.0.1:{listener.getsockname()[1]}/engine-rest"
    client = EngineClient(Settings(engine_url=base))

    with pytest.raises(EngineOutcomeUnknown) as raised:
        client.start(f"{base}/process-definition/key/k/start", b"{}", {})
    thread.join()
    listener.close()

    assert raised.value.timed_out is False
    assert len(received) == 1
    assert received[0].startswith(b"POST /engine-rest/process-definition/key/k/start")
