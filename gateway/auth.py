"""The gateway's own, optional authentication: API keys checked by the gateway.

It is for engines without authentication of their own. A client presents its key
as `X-API-Key: KEY` or `Authorization: Bearer KEY`; the key names the caller,
and the caller becomes part of the reservation identity. The key never reaches
the engine, the logs or the database.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from gateway.errors import Unauthenticated

API_KEY_HEADER = "X-API-Key"
_BEARER = "bearer "


class ApiKeys:
    """Map presented keys to caller names, in constant time per key."""

    def __init__(self, keys: Mapping[str, str]) -> None:
        self._keys = [(caller, key.encode()) for caller, key in keys.items()]

    @property
    def enabled(self) -> bool:
        """Tell whether any key is configured."""
        return bool(self._keys)

    def authenticate(self, headers: Mapping[str, str]) -> str:
        """Return the caller that the request's key names, or refuse it."""
        presented = _presented_key(headers)
        if presented is None:
            raise Unauthenticated("the gateway needs an API key")
        caller = None
        for name, key in self._keys:
            # compare with every key, so the time taken does not tell which matched
            if hmac.compare_digest(key, presented.encode()):
                caller = name
        if caller is None:
            raise Unauthenticated("the API key is not valid")
        return caller


def strip_credentials(headers: dict[str, str]) -> dict[str, str]:
    """Remove the gateway's own credentials before a request goes to the engine."""
    kept = {k: v for k, v in headers.items() if k.lower() != API_KEY_HEADER.lower()}
    return {
        name: value
        for name, value in kept.items()
        if not (name.lower() == "authorization" and value.lower().startswith(_BEARER))
    }


def _presented_key(headers: Mapping[str, str]) -> str | None:
    # header names are case-insensitive (RFC 9110, section 5.1)
    lowered = {name.lower(): value for name, value in headers.items()}
    key = lowered.get(API_KEY_HEADER.lower())
    if key:
        return key
    authorization = lowered.get("authorization", "")
    if authorization.lower().startswith(_BEARER):
        return authorization[len(_BEARER) :].strip() or None
    return None
