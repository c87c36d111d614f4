"""Kept-alive connections to the engine for starts and reads, lent one call at a time.

A call takes the most recently used idle connection, or opens a new one, and
gives it back once it has read the whole answer. The worker therefore holds as
many connections as it ever made calls at once, at most one per thread,
whatever the worker class and however many clients keep connections open to
it. Taking and giving back are a deque's pop and append, which are atomic, so
this needs no lock, and `http.client` on its own does much less per call than
a urllib3 pool on top of it (the README's benchmark section has the figures).
Pass-through, whose bodies stream, stays on the urllib3 pool.

libcurl would be cheaper still, but it sends a request again by itself when a
reused connection closes before any answer, and a start must never be resent
by the transport.
"""

from __future__ import annotations

import collections
import http.client
import logging
import ssl
from urllib.parse import urlsplit

from urllib3.util.wait import wait_for_read

log = logging.getLogger(__name__)


class EngineConnections:
    """Lend kept-alive connections to the engine's host, one call at a time."""

    def __init__(self, base_url: str, connect_timeout: float) -> None:
        parts = urlsplit(base_url)
        self._host = parts.hostname or ""
        # always explicit: without a port, http.client would read the last
        # group of an IPv6 address as one
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._connect_timeout = connect_timeout
        # one context for every connection: building one loads the CA store
        self._tls = ssl.create_default_context() if parts.scheme == "https" else None
        # the most recently used connection is taken first, so that the ones
        # left over from a busy moment sit idle until the engine closes them
        self._idle: collections.deque[http.client.HTTPConnection] = collections.deque()

    def acquire(self, timeout: float) -> http.client.HTTPConnection:
        """Lend an open connection, with `timeout` for its reads.

        Raises OSError when a new connection can't be made; nothing was sent then.
        """
        connection = self._take_idle()
        if connection is None:
            # a short read, such as a readiness probe's, bounds the connect too
            connection = self._connect(min(self._connect_timeout, timeout))

        connection.sock.settimeout(timeout)
        return connection

    def release(self, connection: http.client.HTTPConnection) -> None:
        """Take back a connection whose answer was read in full, for the next call."""
        self._idle.append(connection)

    def discard(self, connection: http.client.HTTPConnection) -> None:
        """Close a connection that can't carry another call."""
        connection.close()

    def _take_idle(self) -> http.client.HTTPConnection | None:
        while True:
            try:
                connection = self._idle.pop()
            except IndexError:
                return None
            if not _is_dropped(connection):
                return connection
            # the engine closed it while it sat idle, as servers do after
            # their keep-alive timeout; sending on it would lose the request
            log.debug("engine connection was closed by the engine, reconnecting")
            connection.close()

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection
        if self._tls is not None:
            connection = http.client.HTTPSConnection(
                self._host, self._port, timeout=timeout, context=self._tls
            )
        else:
            connection = http.client.HTTPConnection(
                self._host, self._port, timeout=timeout
            )
        # a closed connection must fail its next request, never reconnect
        # inside it with the connect timeout standing in for the read timeout
        connection.auto_open = 0
        connection.connect()
        return connection


def _is_dropped(connection: http.client.HTTPConnection) -> bool:
    """Tell whether an idle connection was closed, or has unasked-for data."""
    if connection.sock is None:
        return True
    # an idle HTTP/1.1 connection is readable only at EOF or on garbage
    return wait_for_read(connection.sock, timeout=0.0)
