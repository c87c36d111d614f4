"""Rewrite the engine's ``links[].href`` to point at the gateway, not the engine."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Iterator


def rewrite(body: bytes, engine_base: bytes, gateway_base: bytes) -> bytes:
    """Return the body with every engine base URL replaced by the gateway's."""
    if engine_base == gateway_base:
        return body
    return body.replace(engine_base, gateway_base)


def rewrite_stream(
    chunks: Iterable[bytes], engine_base: bytes, gateway_base: bytes
) -> Iterator[bytes]:
    """Rewrite a streamed body, even where the engine URL spans two chunks."""
    if engine_base == gateway_base:
        yield from chunks
        return

    # keep back the bytes that could be the start of an engine URL cut in two
    keep = len(engine_base) - 1
    tail = b""
    for chunk in chunks:
        buffer = tail + chunk
        head, rest = _replace_complete(buffer, engine_base, gateway_base)
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
