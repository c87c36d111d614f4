"""The gunicorn worker that serves the gateway: gthread, with a prompt shutdown."""

from __future__ import annotations

import logging

from gunicorn.workers.gthread import ThreadWorker

log = logging.getLogger(__name__)


class GatewayThreadWorker(ThreadWorker):  # type: ignore[misc]
    """A gthread worker that lets go of its listening sockets when it stops."""

    def set_accept_enabled(self, enabled: bool) -> None:
        """Stop or start accepting; on shutdown also close the listening sockets."""
        super().set_accept_enabled(enabled)
        if enabled or self.alive:
            return

        # gthread closes them only after the grace period, and until then the
        # kernel keeps completing connections that nobody will accept: a
        # balancer's request would hang instead of being refused and sent to
        # another replica. close() drops this process's copy only; shutdown()
        # would stop the sibling workers, and those a reload starts, as well
        for listener in self.sockets:
            listener.close()
        log.info("worker %d stopped listening; finishing its requests", self.pid)
