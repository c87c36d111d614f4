"""Give every request an id and a clock, and log one line per start decision."""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask
from flask import Response
from flask import g
from flask import request

from gateway import auth
from gateway import logs
from gateway.metrics import REQUEST_LATENCY

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
# an incoming id is kept only if it can't smuggle anything into logs or headers
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


def install(app: Flask) -> None:
    """Register the hooks that identify and time each request."""
    app.before_request(_begin)
    app.after_request(_finish)
    app.teardown_request(_forget)


def current_request_id() -> str:
    """Return the id of the request being handled."""
    request_id: str = g.request_id
    return request_id


def outgoing_headers(strip_api_key: bool) -> dict[str, str]:
    """Return the request's headers as they go to the engine, with its id.

    With the gateway's own authentication on, its API key is removed; without
    it, a bearer token is the engine's business and passes through.
    """
    headers = dict(request.headers)
    if strip_api_key:
        headers = auth.strip_credentials(headers)
    headers[REQUEST_ID_HEADER] = current_request_id()
    return headers


def elapsed_ms() -> float:
    """Return how long the current request has taken so far, in milliseconds."""
    started: float = g.started
    return round((time.perf_counter() - started) * 1000, 2)


def _begin() -> None:
    g.started = time.perf_counter()
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = (
        incoming if _SAFE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
    )
    g.token = logs.request_id.set(g.request_id)


def _finish(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = current_request_id()
    endpoint = request.endpoint or "unknown"
    REQUEST_LATENCY.labels(endpoint.rsplit(".", 1)[-1]).observe(
        time.perf_counter() - g.started
    )
    return response


def _forget(_: BaseException | None) -> None:
    token = g.pop("token", None)
    if token is not None:
        logs.request_id.reset(token)
