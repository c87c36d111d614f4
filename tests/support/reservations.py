"""Make reservations straight in the store, as a test's starting point."""

from __future__ import annotations

import json
from typing import Any

import httpx
import psycopg

from gateway.start_request import ReservationIdentity
from gateway.start_request import fingerprint
from gateway.store import PendingStart
from gateway.store import Reservation
from gateway.store import ReservationStore

KEY = "gateway-waiting"


def start_path(key: str = KEY) -> str:
    """Return the engine path of a start by key, below the engine's base."""
    return f"/process-definition/key/{key}/start"


def reserve_pending(
    store: ReservationStore,
    business_key: str,
    *,
    lease: float = 0.0,
    key: str = KEY,
    document: dict[str, Any] | None = None,
) -> Reservation:
    """Reserve a start of the definition key as the gateway would; lease 0 expires."""
    document = {"businessKey": business_key} if document is None else document
    identity = ReservationIdentity("default", None, key, business_key)
    body = json.dumps(document).encode()
    pending = PendingStart(fingerprint(document), start_path(key), body)
    return store.reserve(identity, pending, lease)


def expire_lease(database_url: str, business_key: str) -> None:
    """Make the lease of the businessKey's reservation run out now."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE reservations SET lease_expires_at = now() WHERE business_key = %s",
            (business_key,),
        )


def post_start(
    gateway: Any, document: dict[str, Any], timeout: float = 60.0
) -> httpx.Response:
    """Send a start of the default definition key to a running gateway."""
    with gateway.client() as http:
        return http.post(start_path(), json=document, timeout=timeout)


def states_and_instances(database_url: str, pattern: str) -> list[tuple[str, str]]:
    """Return the state and instance id of every row whose businessKey is LIKE it."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT state, process_instance_id FROM reservations"
            " WHERE business_key LIKE %s",
            (pattern,),
        ).fetchall()
