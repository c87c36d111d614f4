"""A proxy that checks, as each start arrives, that its reservation is committed.

It stands between the gateway and the real engine. Before it forwards a start,
it looks for the businessKey's pending reservation on a database connection of
its own, which sees committed rows only. When it can't ask the database (it is
down or starting), it answers 502 without forwarding, as a broken network
would, so every start that reached the engine was checked first.
"""

from __future__ import annotations

import dataclasses
import http.client
import threading
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from urllib.parse import urlsplit

import orjson
import psycopg

# a pending row with a live lease: an expired one belongs to an earlier attempt
_COMMITTED_RESERVATION = """
SELECT count(*) FROM reservations
WHERE business_key = %s AND state = 'pending' AND lease_expires_at > now()
"""

# hop-by-hop headers describe one connection, and the witness sets the length
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


@dataclasses.dataclass(frozen=True)
class Arrival:
    """A start that reached the engine, and whether its reservation was committed."""

    business_key: str
    reserved: bool


class ReservationWitness:
    """Forward to the engine; check the reservation of every start on its way."""

    def __init__(self, engine_url: str, database_url: str) -> None:
        parts = urlsplit(engine_url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.engine_path = parts.path
        self.database_url = database_url
        self.lock = threading.Lock()
        self.arrived: list[Arrival] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{self.engine_path}"

    def start(self) -> ReservationWitness:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def arrivals(self) -> list[Arrival]:
        """Return the starts that were forwarded to the engine, in arrival order."""
        with self.lock:
            return list(self.arrived)

    def is_reserved(self, business_key: str) -> bool | None:
        """Tell whether a committed reservation holds the key; None if unknown."""
        try:
            with psycopg.connect(
                self.database_url, autocommit=True, connect_timeout=2
            ) as conn:
                row = conn.execute(_COMMITTED_RESERVATION, (business_key,)).fetchone()
        except psycopg.OperationalError:
            return None
        return row is not None and row[0] == 1

    def witness(self, business_key: str) -> bool:
        """Check a start before it is forwarded; False means it must not go on."""
        reserved = self.is_reserved(business_key)
        if reserved is None:
            return False
        with self.lock:
            self.arrived.append(Arrival(business_key, reserved))
        return True


def _handler(witness: ReservationWitness) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            is_start = self.command == "POST" and self.path.endswith("/start")
            if is_start and not witness.witness(_business_key(body)):
                self._answer(502, {"Content-Type": "text/plain"}, b"unchecked")
                return
            self._answer(*self._forward(body))

        def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
            headers = {
                name: value
                for name, value in self.headers.items()
                if name.lower() not in _HOP_BY_HOP
            }
            connection = http.client.HTTPConnection(*witness.upstream, timeout=120)
            try:
                connection.request(
                    self.command, self.path, body=body or None, headers=headers
                )
                response = connection.getresponse()
                data = response.read()
            finally:
                connection.close()
            kept = {
                name: value
                for name, value in response.getheaders()
                if name.lower() not in _HOP_BY_HOP
            }
            return response.status, kept, data

        def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                # the gateway gave up on this answer; nobody reads it
                self.close_connection = True

        do_GET = _handle  # noqa: N815 -- the name http.server looks up
        do_POST = _handle  # noqa: N815 -- the name http.server looks up
        do_PUT = _handle  # noqa: N815 -- the name http.server looks up
        do_DELETE = _handle  # noqa: N815 -- the name http.server looks up

    return Handler


def _business_key(body: bytes) -> str:
    return str(orjson.loads(body)["businessKey"])
