"""Rewrite the engine's ``links[].href`` to point at the gateway, not the engine."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Iterator

# the engine writes compact JSON, so an href value always starts exactly so; a
# string value can't hold these bare quotes, so no variable can match
_HREF = b'"href":"'


def rewrite(body: bytes, engine_base: bytes, gateway_base: bytes) -> bytes:
    """Point each href that starts at the engine's base at the gateway's instead."""
    if engine_base == gateway_base:
        return body
    return body.replace(_HREF + engine_base, _HREF + gateway_base)


def rewrite_stream(
    chunks: Iterable[bytes], engine_base: bytes, gateway_base: bytes
) -> Iterator[bytes]:
    """Rewrite a streamed body, even where an href spans two chunks."""
    if engine_base == gateway_base:
        yield from chunks
        return

    old = _HREF + engine_base
    new = _HREF + gateway_base
    # keep back the bytes that could be the start of an href cut in two
    keep = len(old) - 1
    tail = b""
    for chunk in chunks:
        buffer = tail + chunk
        head, rest = _replace_complete(buffer, old, new)
        cut = max(len(rest) - keep, 0)
        tail = rest[cut:]
        if head or cut:
            yield head + rest[:cut]
    if tail:
        yield tail


def _replace_complete(buffer: bytes, old: bytes, new: bytes) -> tuple[bytes, bytes]:
    """Replace every whole match; return the replaced part and the unmatched rest."""
    parts = []
    start = 0
    while (found := buffer.find(old, start)) != -1:
        parts.append(buffer[start:found])
        parts.append(new)
        start = found + len(old)
    return b"".join(parts), buffer[start:]
