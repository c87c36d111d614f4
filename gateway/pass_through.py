"""Forward every request under the base path that is not a start, streamed."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Protocol

from gateway import links
from gateway.engine import HOP_BY_HOP
from gateway.engine import EngineClient
from gateway.engine import iter_body
from gateway.errors import InvalidRequest

log = logging.getLogger(__name__)

# an encoded slash, backslash, dot or control character in a raw path would let
# a request reach a different engine endpoint than the path it seems to name
_ENCODED_UNSAFE = re.compile(r"%(2f|5c|2e|00|0[0-9a-f]|1[0-9a-f]|7f)", re.IGNORECASE)
_RAW_UNSAFE = re.compile(r"[\x00-\x20\x7f\\;]")
_DROPPED_RESPONSE_HEADERS = HOP_BY_HOP | {"content-length"}


class Readable(Protocol):
    """A request body that the gateway reads as it forwards it."""

    def read(self, size: int = -1, /) -> bytes:
        """Return up to ``size`` bytes, or all that is left; b"" at the end."""
        ...


class EngineResponse:
    """An engine answer ready to stream to the client, with its links rewritten."""

    def __init__(
        self, status: int, headers: list[tuple[str, str]], body: Iterator[bytes]
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body


def check_raw_path(raw_path: str) -> None:
    """Refuse a raw path that a server could normalize into a different endpoint."""
    if _RAW_UNSAFE.search(raw_path) or _ENCODED_UNSAFE.search(raw_path):
        raise InvalidRequest(
            "the path contains an encoded slash, dot, backslash or control character"
        )
    segments = raw_path.split("/")[1:]
    if any(segment in ("", ".", "..") for segment in segments):
        raise InvalidRequest("the path contains an empty, '.' or '..' segment")


def forward(
    engine: EngineClient,
    *,
    method: str,
    suffix: str,
    query: str,
    headers: Mapping[str, str],
    body: Readable | None,
    gateway_base: str,
) -> EngineResponse:
    """Forward one request to the engine and prepare its answer for streaming."""
    url = engine.base + suffix + (f"?{query}" if query else "")
    outgoing = dict(headers)
    chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
    payload = _body(body, headers, chunked)
    response = engine.stream(method, url, outgoing, payload, chunked)

    response_headers = [
        (name, value)
        for name, value in response.headers.items()
        if name.lower() not in _DROPPED_RESPONSE_HEADERS
    ]
    chunks = iter_body(response)
    if _is_rewritable(response.headers):
        chunks = links.rewrite_stream(
            chunks, engine.base.encode(), gateway_base.encode()
        )
    else:
        length = response.headers.get("Content-Length")
        if length is not None:
            response_headers.append(("Content-Length", length))
    response_headers = [
        (name, _rewrite_location(name, value, engine.base, gateway_base))
        for name, value in response_headers
    ]
    return EngineResponse(response.status, response_headers, chunks)


def _body(body: Readable | None, headers: Mapping[str, str], chunked: bool) -> object:
    if body is None:
        return None
    if chunked:
        return iter(lambda: body.read(64 * 1024), b"")
    if int(headers.get("Content-Length") or 0) > 0:
        return body
    return None


def _is_rewritable(headers: Mapping[str, str]) -> bool:
    content_type = headers.get("Content-Type", "")
    encoding = headers.get("Content-Encoding", "identity").lower()
    return "json" in content_type and encoding == "identity"


def _rewrite_location(
    name: str, value: str, engine_base: str, gateway_base: str
) -> str:
    if name.lower() != "location" or not value.startswith(engine_base):
        return value
    return gateway_base + value[len(engine_base) :]
