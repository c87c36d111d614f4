"""The gunicorn gevent worker that serves the gateway: greenlets instead of threads.

A greenlet costs less to switch to than a thread, and one worker's greenlets
never contend for Python's interpreter lock, so a gevent worker does more
starts per second on one core than a gthread worker does (the README's
benchmark section has the figures). gunicorn patches the standard library
before it loads the app, which makes psycopg wait for PostgreSQL, and
`http.client` for the engine, without blocking the worker's other requests.
"""

from __future__ import annotations

import logging
from typing import Any

from gevent.lock import BoundedSemaphore
from gunicorn.workers.ggevent import GeventWorker

log = logging.getLogger(__name__)


class GatewayGeventWorker(GeventWorker):  # type: ignore[misc]
    """A gevent worker that serves at most GATEWAY_THREADS requests at once.

    gunicorn's gevent worker runs a greenlet per connection, up to a thousand,
    and each would run its request at once. Every start holds a database
    connection until it has answered, so past the pool's size starts would
    queue for a connection and fail after the pool timeout. Here they queue
    for a turn instead, as they queue for a thread in a gthread worker, and an
    idle kept-alive connection, such as a balancer's, holds no turn.
    """

    def init_process(self) -> None:
        """Size the turns, then let gunicorn patch the library and load the app."""
        self._turns = BoundedSemaphore(self.cfg.threads)
        super().init_process()

    def handle_request(
        self, listener_name: Any, req: Any, sock: Any, addr: Any
    ) -> bool:
        """Serve one request once a turn is free."""
        with self._turns:
            return bool(super().handle_request(listener_name, req, sock, addr))
