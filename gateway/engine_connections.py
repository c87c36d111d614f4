"""Kept-alive connections to the engine for starts and reads: one per thread.

A gthread worker hands each request to one thread, and the request makes its
engine calls one after another, so a thread never needs a second connection.
One per thread needs no pool, no lock and no queue, and `http.client` on its
own does much less per call than a urllib3 pool on top of it (the README's
benchmark section has the figures). Pass-through, whose bodies stream, stays
on the urllib3 pool.

libcurl would be cheaper still, but it sends a request again by itself when a
reused connection closes before any answer, and a start must never be resent
by the transport.
"""

from __future__ import annotations

import http.client
import logging
import ssl
import threading
from urllib.parse import urlsplit

from urllib3.util.wait import wait_for_read

log = logging.getLogger(__name__)


class EngineConnections:
    """Give each thread its own kept-alive connection to the engine's host."""

    def __init__(self, base_url: str, connect_timeout: float) -> None:
        parts = urlsplit(base_url)
        self._host = parts.hostname or ""
        # always explicit: without a port, http.client would read the last
        # group of an IPv6 address as one
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._connect_timeout = connect_timeout
        # one context for every connection: building one loads the CA store
        self._tls = ssl.create_default_context() if parts.scheme == "https" else None
        self._local = threading.local()

    def acquire(self, timeout: float) -> http.client.HTTPConnection:
        """Return this thread's open connection, with `timeout` for its reads.

        Raises OSError when a new connection can't be made; nothing was sent then.
        """
        connection: http.client.HTTPConnection | None = getattr(
            self._local, "connection", None
        )
        if connection is not None and _is_dropped(connection):
            # the engine closed it while it sat idle, as servers do after
            # their keep-alive timeout; sending on it would lose the request
            log.debug("engine connection was closed by the engine, reconnecting")
            connection.close()
            connection = None
        if connection is None:
            # a short read, such as a readiness probe's, bounds the connect too
            connection = self._connect(min(self._connect_timeout, timeout))
            self._local.connection = connection

        connection.sock.settimeout(timeout)
        return connection

    def discard(self) -> None:
        """Close this thread's connection, so that its next call reconnects."""
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
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
