"""A check, as each start arrives at the engine, that its reservation is committed.

It hooks into the fault proxy before each forward. It looks for the
businessKey's pending reservation on a database connection of its own, which
sees committed rows only. When it can't ask the database (it is down or
starting), the proxy answers 502 without forwarding, as a broken network would,
so every start that reached the engine was checked first.
"""

from __future__ import annotations

import dataclasses
import threading

import orjson
import psycopg

from tests.support.proxy import Recorded

# a pending row with a live lease: an expired one belongs to an earlier attempt
_COMMITTED_RESERVATION = """
SELECT count(*) FROM reservations
WHERE business_key = %s AND state = 'pending' AND lease_expires_at > now()
"""


@dataclasses.dataclass(frozen=True)
class Arrival:
    """A start that reached the engine, and whether its reservation was committed."""

    business_key: str
    reserved: bool


class ReservationWitness:
    """Record, for every start about to be forwarded, whether it was reserved."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.lock = threading.Lock()
        self.arrived: list[Arrival] = []

    def arrivals(self) -> list[Arrival]:
        """Return the starts that were forwarded to the engine, in arrival order."""
        with self.lock:
            return list(self.arrived)

    def check(self, request: Recorded) -> bool:
        """Check a request before it is forwarded; False means it must not go on."""
        if request.method != "POST" or not request.path.endswith("/start"):
            return True
        business_key = str(orjson.loads(request.body)["businessKey"])
        reserved = self._is_reserved(business_key)
        if reserved is None:
            return False
        with self.lock:
            self.arrived.append(Arrival(business_key, reserved))
        return True

    def _is_reserved(self, business_key: str) -> bool | None:
        """Tell whether a committed reservation holds the key; None if unknown."""
        try:
            with psycopg.connect(
                self.database_url, autocommit=True, connect_timeout=2
            ) as conn:
                row = conn.execute(_COMMITTED_RESERVATION, (business_key,)).fetchone()
        except psycopg.OperationalError:
            return None
        return row is not None and row[0] == 1
