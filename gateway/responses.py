"""Turn the gateway's errors into answers in the engine's error shape, in one place."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from flask import Flask
from flask import Response
from werkzeug.exceptions import HTTPException

from gateway.errors import GatewayError

log = logging.getLogger(__name__)

JSON = "application/json"
# the headers of werkzeug's own errors that belong in the answer: Allow on a 405
# (RFC 9110, section 15.5.6), a challenge on a 401, Retry-After on a 429 or 503;
# its Content-Type is for an HTML body that the gateway doesn't send
_KEPT_HTTP_HEADERS = frozenset({"allow", "www-authenticate", "retry-after"})


def error_body(error_type: str, message: str, **extra: Any) -> bytes:
    """Encode an error the way the engine does: type, message and code."""
    return orjson.dumps({"type": error_type, "message": message, "code": 0, **extra})


def register_error_handlers(app: Flask) -> None:
    """Map every exception to an HTTP answer; the catch-all comes last."""

    @app.errorhandler(GatewayError)
    def handle_gateway_error(error: GatewayError) -> Response:
        if error.status >= 500:
            log.warning(
                "answering %d %s: %s", error.status, error.error_type, error.message
            )
        body = error_body(error.error_type, error.message, **error.extra)
        return Response(body, error.status, error.headers(), content_type=JSON)

    @app.errorhandler(HTTPException)
    def handle_http_exception(error: HTTPException) -> Response:
        status = error.code or 500
        name = (error.name or "HTTPException").replace(" ", "")
        body = error_body(name, (error.description or name).rstrip("."))
        headers = [
            (header, value)
            for header, value in error.get_headers()
            if header.lower() in _KEPT_HTTP_HEADERS
        ]
        return Response(body, status, headers, content_type=JSON)

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception) -> Response:
        log.exception("unexpected error")
        body = error_body("GatewayError", "the gateway failed to handle the request")
        return Response(body, 500, content_type=JSON)
