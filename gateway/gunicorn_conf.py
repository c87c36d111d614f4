"""Gunicorn settings and hooks, taken from the gateway's environment settings."""

from __future__ import annotations

import logging
import math
from typing import Any

from gateway.config import load_settings
from gateway.logs import configure_logging

_settings = load_settings()

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.workers
threads = _settings.threads
# gthread is the gateway's own subclass of it, which stops listening at once
# on SIGTERM; the other classes are gunicorn's as they are
worker_class = (
    "gateway.worker.GatewayThreadWorker"
    if _settings.worker_class == "gthread"
    else _settings.worker_class
)
# a start may wait for the engine for the whole engine timeout, plus the time it
# takes to look the outcome up afterwards
timeout = int(_settings.engine_timeout * 2 + 30)
# on SIGTERM a worker stops accepting and finishes its starts for this long
graceful_timeout = math.ceil(_settings.grace_period)
# longer than a balancer keeps idle upstream connections (nginx: 60 s), so that
# the balancer never sends a request on a connection the gateway is closing
keepalive = _settings.keepalive
# gunicorn believes no peer's X-Forwarded-Proto, -Protocol or -Ssl, nor its
# SCRIPT_NAME header, not even loopback's: only the app's ProxyFix decides, from
# GATEWAY_TRUSTED_PROXIES; the header lists are emptied too, because gunicorn
# trusts a peer without an IP address (a UNIX socket) whatever the allow list
forwarded_allow_ips = ""
secure_scheme_headers: dict[str, str] = {}
forwarder_headers = ""
# replicas on one host would all claim the same default control socket path
control_socket_disable = True
# each worker proves it is alive by touching a file after every turn of its
# loop; on a disk-backed filesystem that touch can wait on the disk's journal
# for as long as the disk is busy, and the worker takes no request meanwhile
worker_tmp_dir = _settings.runtime_dir
accesslog = None
errorlog = "-"
loglevel = _settings.log_level.lower()

log = logging.getLogger("gateway.server")


def on_starting(server: Any) -> None:
    """Log where the gateway listens before the workers start."""
    configure_logging(_settings.log_format, _settings.log_level)
    log.info(
        "serving %s on %s with %d %s workers",
        _settings.base_path,
        bind,
        workers,
        worker_class,
    )


def post_fork(server: Any, worker: Any) -> None:
    """Configure logging in each worker, which builds its own connection pools."""
    configure_logging(_settings.log_format, _settings.log_level)


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live metrics; its counters stay in the totals."""
    from prometheus_client import multiprocess  # noqa: PLC0415 -- after the env is set

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def worker_exit(server: Any, worker: Any) -> None:
    """Close the worker's database connections when it exits."""
    app = getattr(worker, "wsgi", None)
    services = getattr(app, "extensions", {}).get("gateway") if app else None
    if services is not None:
        services.store.close()
