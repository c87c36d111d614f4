"""Remember, briefly, which callers the engine let read which instance.

Before a replay the gateway reads the instance with the caller's own
credentials. A client that retries one start many times, or many clients that
replay under one service account, would pay that engine call on every replay.
This cache keeps the engine's yes for a few seconds. It never keeps a no, and
it keeps no credentials: only a hash of the headers that carry them.

Limitation: a permission revoked in the engine still lets the same credentials
replay an instance they could read for up to the cache's lifetime.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping

# the request headers that carry a caller's credentials to the engine
_CREDENTIAL_HEADERS = ("authorization", "cookie")
_MAX_ENTRIES = 10_000


class ReadGrants:
    """The engine's recent answers that a caller may read an instance."""

    def __init__(
        self, lifetime: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.lifetime = lifetime
        self.clock = clock
        self._expiry: dict[tuple[str, str, bytes], float] = {}
        self._lock = threading.Lock()

    def allows(
        self, engine_name: str, instance_id: str, headers: Mapping[str, str]
    ) -> bool:
        """Tell whether the engine let these credentials read the instance lately."""
        if self.lifetime <= 0:
            return False
        expires = self._expiry.get(_key(engine_name, instance_id, headers))
        return expires is not None and self.clock() < expires

    def remember(
        self, engine_name: str, instance_id: str, headers: Mapping[str, str]
    ) -> None:
        """Record that the engine let these credentials read the instance."""
        if self.lifetime <= 0:
            return
        key = _key(engine_name, instance_id, headers)
        with self._lock:
            if len(self._expiry) >= _MAX_ENTRIES:
                # dropping everything is cheap, and costs one engine read per entry
                self._expiry.clear()
            self._expiry[key] = self.clock() + self.lifetime


def _key(
    engine_name: str, instance_id: str, headers: Mapping[str, str]
) -> tuple[str, str, bytes]:
    digest = hashlib.sha256()
    for name, value in headers.items():
        if name.lower() in _CREDENTIAL_HEADERS:
            digest.update(name.lower().encode())
            digest.update(b"\0")
            digest.update(value.encode("utf-8", "surrogateescape"))
            digest.update(b"\0")
    return engine_name, instance_id, digest.digest()
