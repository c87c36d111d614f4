"""Settle pending reservations whose lease expired, without waiting for a client.

A replica that died mid-start leaves a pending row behind. The reconciler takes
such rows over (attempt + 1), looks their identity up in the engine, adopts what
it finds, and forwards the start again when the engine has nothing. Rows are
claimed with SKIP LOCKED, so any number of reconcilers can run at once.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import threading

from gateway.config import Settings
from gateway.errors import GatewayError
from gateway.errors import StartNotSent
from gateway.outcomes import ADOPTED
from gateway.outcomes import CREATED
from gateway.outcomes import RELEASED
from gateway.starts import StartService
from gateway.store import ClaimedReservation
from gateway.store import ReservationStore

log = logging.getLogger(__name__)

BATCH_SIZE = 50


@dataclasses.dataclass
class ReconcileReport:
    """What one reconciliation pass did."""

    adopted: int = 0
    reforwarded: int = 0
    released: int = 0
    unresolved: int = 0

    def add(self, other: ReconcileReport) -> None:
        """Add another pass's counts to this one."""
        self.adopted += other.adopted
        self.reforwarded += other.reforwarded
        self.released += other.released
        self.unresolved += other.unresolved

    def total(self) -> int:
        """Return how many rows the pass handled."""
        return self.adopted + self.reforwarded + self.released + self.unresolved


class Reconciler:
    """Resolve every expired pending reservation."""

    def __init__(
        self, settings: Settings, store: ReservationStore, starts: StartService
    ) -> None:
        self.settings = settings
        self.store = store
        self.starts = starts
        self.headers = _engine_headers(settings)

    def run_once(self) -> ReconcileReport:
        """Resolve the rows that are expired now, batch by batch."""
        report = ReconcileReport()
        # rows that expire again during this pass (their engine calls hang for
        # longer than the lease) are left to the next one, so a pass always ends
        pass_began = self.store.database_now()
        while True:
            claimed = self.store.claim_expired(
                BATCH_SIZE, self.settings.lease, expired_by=pass_began
            )
            if not claimed:
                break
            for row in claimed:
                self._settle(row, report)
        if report.total():
            log.info(
                "reconciled: %d adopted, %d re-forwarded, %d released, %d unresolved",
                report.adopted,
                report.reforwarded,
                report.released,
                report.unresolved,
            )
        return report

    def run_forever(self, interval: float, stop: threading.Event) -> ReconcileReport:
        """Resolve expired rows every `interval` seconds until `stop` is set."""
        report = ReconcileReport()
        while not stop.is_set():
            try:
                report.add(self.run_once())
            except GatewayError as exc:
                log.warning("reconciliation pass failed: %s", exc.message)
            stop.wait(interval)
        return report

    def _settle(self, row: ClaimedReservation, report: ReconcileReport) -> None:
        described = row.identity.describe()
        try:
            result = self.starts.settle_claimed(row, self.headers)
        except StartNotSent:
            # nothing reached the engine, and the start logic released the row
            report.released += 1
            return
        except GatewayError as exc:
            log.warning("could not settle %s: %s", described, exc.message)
            report.unresolved += 1
            return
        if result.outcome == ADOPTED:
            report.adopted += 1
        elif result.outcome == CREATED:
            report.reforwarded += 1
        elif result.outcome == RELEASED:
            report.released += 1
        else:
            # refused with 401, 403 or 404, which leaves the row pending
            report.unresolved += 1


def _engine_headers(settings: Settings) -> dict[str, str]:
    """Return the credentials that the reconciler presents to the engine, if any."""
    if settings.reconcile_user is None:
        return {}
    pair = f"{settings.reconcile_user}:{settings.reconcile_password or ''}"
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
