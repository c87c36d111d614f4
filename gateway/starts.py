"""The idempotent start: reserve, forward, record, or answer from the record.

This module ties the reservation store to the engine client. It decides what a
start means given the reservation it meets, and how to settle a forward whose
outcome is not known. It knows nothing about Flask.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson

from gateway.config import Settings
from gateway.engine import DEFAULT_ENGINE
from gateway.engine import EngineAnswer
from gateway.engine import EngineClient
from gateway.engine import EngineOutcomeUnknown
from gateway.engine import EngineUnreachable
from gateway.engine import FoundInstance
from gateway.errors import DatabaseUnavailable
from gateway.errors import EngineUnavailable
from gateway.errors import IdempotencyKeyReused
from gateway.errors import PathNotFound
from gateway.errors import ReplayRefused
from gateway.errors import StartInProgress
from gateway.errors import StartNotSent
from gateway.errors import StartOutcomeUnknown
from gateway.errors import StartTimedOut
from gateway.metrics import DUPLICATE_INSTANCES
from gateway.metrics import ENGINE_LATENCY
from gateway.metrics import RECONCILIATIONS
from gateway.outcomes import ADOPTED
from gateway.outcomes import CREATED
from gateway.outcomes import REJECTED
from gateway.outcomes import RELEASED
from gateway.outcomes import REPLAYED
from gateway.outcomes import UNPROTECTED
from gateway.read_grants import ReadGrants
from gateway.start_request import ReservationIdentity
from gateway.start_request import StartRequest
from gateway.start_request import StartTarget
from gateway.store import ClaimedReservation
from gateway.store import PendingStart
from gateway.store import Reservation
from gateway.store import ReservationStore

log = logging.getLogger(__name__)

_JSON = {"Content-Type": "application/json"}
# how often a request polls a reservation that another request holds
_POLL_FIRST = 0.01
_POLL_MAX = 0.2
# a reservation can be released and taken again while a request waits; this
# bounds how often one request goes round that loop
_MAX_ROUNDS = 5
# Refusals that may only mean "not for you". After a takeover an earlier attempt
# may have started the instance, and the lookup before the forward ran with the
# caller's credentials: an instance the engine hides from them looks absent. Such
# a refusal proves nothing about the instance, so it must not release the row.
_REFUSALS_OF_THE_CALLER = frozenset({401, 403, 404})


@dataclasses.dataclass(frozen=True)
class StartResult:
    """What the client gets back for a start, and what became of the start."""

    status: int
    body: bytes
    headers: Mapping[str, str]
    outcome: str
    idempotency_status: str | None = None
    process_instance_id: str | None = None


@dataclasses.dataclass(frozen=True)
class _Attempt:
    """The attempt that this request owns on a reservation."""

    identity: ReservationIdentity
    # which reservation of the identity: a released one can be made again
    reservation_id: uuid.UUID | None
    number: int
    url: str


class StartService:
    """Start process instances at most once per reservation identity."""

    def __init__(
        self,
        settings: Settings,
        store: ReservationStore,
        engine: EngineClient,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.store = store
        self.engine = engine
        self.sleep = sleep
        self.definitions = _DefinitionCache()
        self.read_grants = ReadGrants(settings.replay_authorization_cache)

    def start(
        self, request: StartRequest, headers: Mapping[str, str], named: bool
    ) -> StartResult:
        """Start the requested instance, or return the one it already has."""
        self._check_engine_name(request.target, headers, named)
        url = self.engine.start_url(request.target, named)
        if request.business_key is None:
            # configured to forward starts without a businessKey, unprotected
            answer = self._forward_unreserved(url, request.body, headers)
            return _pass_through(answer, UNPROTECTED)

        resolved = self._identity(request, headers, named)
        if isinstance(resolved, EngineAnswer):
            # the engine refused to describe the definition, so nothing is reserved
            return _pass_through(resolved, REJECTED)

        pending = PendingStart(
            request.fingerprint, url.removeprefix(self.engine.base), request.body
        )
        with self.store.holding_connection():
            return self._reserve_and_start(resolved, request, pending, headers, url)

    def _reserve_and_start(
        self,
        resolved: ReservationIdentity,
        request: StartRequest,
        pending: PendingStart,
        headers: Mapping[str, str],
        url: str,
    ) -> StartResult:
        """Reserve the identity, then forward the start or answer from the row."""
        for _ in range(_MAX_ROUNDS):
            reservation = self.store.reserve(resolved, pending, self.settings.lease)
            if reservation.created:
                attempt = _Attempt(
                    resolved, reservation.reservation_id, reservation.attempt, url
                )
                return self._forward(attempt, request.body, headers)
            result = self._answer_existing(resolved, request, headers, reservation, url)
            if result is not None:
                return result
        raise _in_flight(resolved)

    def _check_engine_name(
        self, target: StartTarget, headers: Mapping[str, str], named: bool
    ) -> None:
        """Refuse a named engine that the engine does not have, before reserving."""
        if not named or target.engine_name == DEFAULT_ENGINE:
            return
        names = self.engine.engine_names(headers)
        if names is not None and target.engine_name not in names:
            raise PathNotFound(
                f"engine '{target.engine_name}' is not known to the engine"
            )

    # the reservation exists already

    def _answer_existing(
        self,
        identity: ReservationIdentity,
        request: StartRequest,
        headers: Mapping[str, str],
        reservation: Reservation,
        url: str,
    ) -> StartResult | None:
        """Answer from another request's reservation; None means reserve again."""
        if reservation.fingerprint != request.fingerprint:
            instance_id = self._nameable_instance(identity, reservation, headers)
            raise IdempotencyKeyReused(
                f"{identity.describe()} was used for a start with other content",
                processInstanceId=instance_id,
            )
        if reservation.is_started:
            return self._replay(identity, reservation, headers)

        settled = self._wait_while_in_flight(identity, reservation)
        if settled is None:
            return None
        if settled.fingerprint != request.fingerprint:
            # the first request was released, and a different one took the key
            return None
        if settled.is_started:
            return self._replay(identity, settled, headers)
        if settled.lease_expired:
            return self._take_over(identity, request, headers, settled, url)
        raise _in_flight(identity)

    def _wait_while_in_flight(
        self, identity: ReservationIdentity, reservation: Reservation
    ) -> Reservation | None:
        """Poll a pending reservation until it settles, expires or the wait ends."""
        # a duplicate storm must not tie up a connection per waiting request
        self.store.hand_back_connection()
        deadline = time.monotonic() + self.settings.inflight_wait
        delay = _POLL_FIRST
        current: Reservation | None = reservation
        while (
            current is not None and not current.is_started and not current.lease_expired
        ):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.sleep(min(delay, remaining))
            delay = min(delay * 2, _POLL_MAX)
            current = self.store.find(identity)
        return current

    def _take_over(
        self,
        identity: ReservationIdentity,
        request: StartRequest,
        headers: Mapping[str, str],
        reservation: Reservation,
        url: str,
    ) -> StartResult | None:
        """Claim an expired reservation, then adopt an instance or forward again."""
        number = self.store.take_over(
            identity,
            reservation.reservation_id,
            reservation.attempt,
            self.settings.lease,
        )
        if number is None:
            # another request took it over first; go round and meet its attempt
            return None
        log.warning(
            "taking over %s at attempt %d after its lease expired",
            identity.describe(),
            number,
        )
        attempt = _Attempt(identity, reservation.reservation_id, number, url)
        return self._adopt_or_forward_again(attempt, request.body, headers)

    def settle_claimed(
        self, claimed: ClaimedReservation, headers: Mapping[str, str]
    ) -> StartResult:
        """Settle a row that a reconciler took over: adopt, or forward it again."""
        url = self.engine.base + claimed.start.start_path
        attempt = _Attempt(
            claimed.identity, claimed.reservation_id, claimed.attempt, url
        )

        result = self._adopt_or_forward_again(attempt, claimed.start.body, headers)
        if result is None:
            raise StartInProgress(
                f"{claimed.identity.describe()} was taken over by a newer attempt",
                retry_after=1,
            )
        return result

    def _adopt_or_forward_again(
        self, attempt: _Attempt, body: bytes, headers: Mapping[str, str]
    ) -> StartResult | None:
        """Adopt what the engine has for a taken-over start, or forward it again."""
        found = self._lookup(attempt.identity, headers)
        if found is None:
            raise self._unknown(attempt, timed_out=False)
        if found:
            return self._adopt(attempt, found)
        return self._forward_again(attempt, body, headers)

    def _replay(
        self,
        identity: ReservationIdentity,
        reservation: Reservation,
        headers: Mapping[str, str],
    ) -> StartResult:
        """Return the recorded answer, if the engine lets this caller read it."""
        assert reservation.response is not None
        assert reservation.process_instance_id is not None
        instance_id = reservation.process_instance_id
        if self.settings.replay_authorization:
            self._refuse_unreadable(identity, instance_id, headers)

        log.info("replayed instance %s for %s", instance_id, identity.describe())
        return StartResult(
            200,
            reservation.response,
            _JSON,
            outcome=REPLAYED,
            idempotency_status=REPLAYED,
            process_instance_id=instance_id,
        )

    def _nameable_instance(
        self,
        identity: ReservationIdentity,
        reservation: Reservation,
        headers: Mapping[str, str],
    ) -> str | None:
        """Return the instance id for an error to name, if this caller may read it."""
        instance_id = reservation.process_instance_id
        if instance_id is None or not self.settings.replay_authorization:
            return instance_id
        try:
            refusal = self._read_refusal(identity, instance_id, headers)
        except EngineUnavailable:
            # the refusal stands without the id; naming it unchecked could leak it
            return None
        return instance_id if refusal is None else None

    def _refuse_unreadable(
        self,
        identity: ReservationIdentity,
        instance_id: str,
        headers: Mapping[str, str],
    ) -> None:
        """Read the instance with the caller's credentials; raise if refused."""
        refusal = self._read_refusal(identity, instance_id, headers)
        if refusal is None:
            return

        log.info(
            "replay of %s refused: the engine answered %d to a read of instance %s",
            identity.describe(),
            refusal.status,
            instance_id,
        )
        raise ReplayRefused(
            f"the engine does not let this caller read the instance of "
            f"{identity.describe()}",
            status=refusal.status if refusal.status in (401, 403) else 404,
            challenge=refusal.headers.get("WWW-Authenticate"),
        )

    def _read_refusal(
        self,
        identity: ReservationIdentity,
        instance_id: str,
        headers: Mapping[str, str],
    ) -> EngineAnswer | None:
        """Read the instance as the caller; return the engine's refusal, if any."""
        if self.read_grants.allows(identity.engine_name, instance_id, headers):
            return None
        root = self.engine.engine_root(identity.engine_name, named=False)
        instance = quote(instance_id, safe="")
        try:
            answer = self.engine.get(
                f"{root}/history/process-instance/{instance}", headers
            )
            if answer.status == 404:
                # an engine without history only knows running instances
                answer = self.engine.get(f"{root}/process-instance/{instance}", headers)
        except (EngineUnreachable, EngineOutcomeUnknown) as exc:
            # without the engine nobody can say who may read the instance, and
            # handing it out unchecked could leak it
            raise EngineUnavailable(
                "the engine can't be reached to authorize the replay", retry_after=1
            ) from exc
        if answer.status == 200:
            self.read_grants.remember(identity.engine_name, instance_id, headers)
            return None
        if answer.status >= 500:
            # a failed read says nothing about who may read the instance
            raise EngineUnavailable(
                f"the engine answered {answer.status} to the read that authorizes"
                " the replay",
                retry_after=1,
            )
        return answer

    # this request owns the attempt

    def _forward_again(
        self, attempt: _Attempt, body: bytes, headers: Mapping[str, str]
    ) -> StartResult | None:
        """Forward a taken-over start; None if its attempt lost the reservation."""
        # the lookup before this may have outlasted the lease, and a newer
        # attempt may have taken the row over and forwarded the start itself
        renewed = self.store.renew_lease(
            attempt.identity,
            attempt.reservation_id,
            attempt.number,
            self.settings.lease,
        )
        if not renewed:
            log.warning(
                "attempt %d of %s lost the reservation before its forward",
                attempt.number,
                attempt.identity.describe(),
            )
            return None
        return self._forward(attempt, body, headers)

    def _forward(
        self, attempt: _Attempt, body: bytes, headers: Mapping[str, str]
    ) -> StartResult:
        """Send the start to the engine and settle the reservation by its outcome."""
        identity = attempt.identity
        started_at = time.perf_counter()
        try:
            answer = self.engine.start(attempt.url, body, headers)
        except EngineUnreachable as exc:
            log.warning("engine unreachable for %s: %s", identity.describe(), exc)
            raise self._release_unsent(attempt) from exc
        except EngineOutcomeUnknown as exc:
            log.warning("outcome unknown for %s: %s", identity.describe(), exc)
            return self._settle_unknown(attempt, headers, exc.timed_out)
        finally:
            ENGINE_LATENCY.observe(time.perf_counter() - started_at)

        if 200 <= answer.status < 300:
            return self._record_created(attempt, answer)
        if 400 <= answer.status < 500:
            if attempt.number > 1 and answer.status in _REFUSALS_OF_THE_CALLER:
                return self._keep_pending(attempt, answer)
            return self._release(attempt, answer)
        if answer.has_engine_error_body:
            return self._settle_probably_not_created(attempt, headers, answer)
        log.warning(
            "outcome unknown for %s: engine answered %d",
            identity.describe(),
            answer.status,
        )
        return self._settle_unknown(attempt, headers, timed_out=answer.status == 504)

    def _release_unsent(self, attempt: _Attempt) -> EngineUnavailable:
        """Release a start that never reached the engine; return what to raise."""
        released = self.store.release(
            attempt.identity, attempt.reservation_id, attempt.number
        )
        if not released:
            # a newer attempt owns the row, and its outcome is its own
            return EngineUnavailable("the engine can't be reached", retry_after=1)
        return StartNotSent("the engine can't be reached", retry_after=1)

    def _record_created(self, attempt: _Attempt, answer: EngineAnswer) -> StartResult:
        """Record the instance that the engine created."""
        instance_id = _instance_id(answer.body)
        self._record(attempt, instance_id, answer.body)
        log.info("created %s as instance %s", attempt.identity.describe(), instance_id)
        return StartResult(
            answer.status,
            answer.body,
            _JSON,
            outcome=CREATED,
            idempotency_status=CREATED,
            process_instance_id=instance_id,
        )

    def _release(self, attempt: _Attempt, answer: EngineAnswer) -> StartResult:
        """Delete the reservation of a start that the engine refused."""
        self.store.release(attempt.identity, attempt.reservation_id, attempt.number)
        log.info(
            "released %s: the engine answered %d",
            attempt.identity.describe(),
            answer.status,
        )
        return _pass_through(answer, RELEASED)

    def _keep_pending(self, attempt: _Attempt, answer: EngineAnswer) -> StartResult:
        """Pass a refusal through, leaving the reservation for a caller who can see."""
        log.warning(
            "kept %s pending at attempt %d: the engine refused this caller with %d,"
            " and an earlier attempt may have started it",
            attempt.identity.describe(),
            attempt.number,
            answer.status,
        )
        return _pass_through(answer, REJECTED)

    def _settle_probably_not_created(
        self, attempt: _Attempt, headers: Mapping[str, str], answer: EngineAnswer
    ) -> StartResult:
        """Confirm an engine error with one lookup: adopt what it finds, or release."""
        # the engine's transaction normally rolled back, but an error raised after
        # its commit looks the same, so one lookup decides
        found = self._lookup(attempt.identity, headers)
        if found:
            return self._adopt(attempt, found)
        if found is None:
            return self._settle_unknown(
                attempt, headers, timed_out=False, looked_up=True
            )
        return self._release(attempt, answer)

    def _settle_unknown(
        self,
        attempt: _Attempt,
        headers: Mapping[str, str],
        timed_out: bool,
        looked_up: bool = False,
    ) -> StartResult:
        """Look the identity up at once; adopt it, or leave the reservation pending."""
        found = None if looked_up else self._lookup(attempt.identity, headers)
        if found:
            return self._adopt(attempt, found)
        raise self._unknown(attempt, timed_out)

    def _unknown(self, attempt: _Attempt, timed_out: bool) -> StartOutcomeUnknown:
        # the lease must run out before anyone may forward this start again
        retry_after = int(self.settings.lease) + 1
        message = (
            f"the engine may have started {attempt.identity.describe()}; "
            "retry with the same request once the reservation's lease has expired"
        )
        if timed_out:
            return StartTimedOut(message, retry_after=retry_after)
        return StartOutcomeUnknown(message, retry_after=retry_after)

    def _adopt(self, attempt: _Attempt, found: list[FoundInstance]) -> StartResult:
        """Record an instance that the engine has but the gateway never heard of."""
        identity = attempt.identity
        if len(found) > 1:
            DUPLICATE_INSTANCES.inc()
            # someone started instances past the gateway; the oldest one wins
            log.warning(
                "the engine holds %d instances for %s; adopting the oldest, %s",
                len(found),
                identity.describe(),
                found[0].id,
            )
        instance = found[0]
        body = self._start_response(identity, instance)
        self._record(attempt, instance.id, body)
        log.info("adopted instance %s for %s", instance.id, identity.describe())
        return StartResult(
            200,
            body,
            _JSON,
            outcome=ADOPTED,
            idempotency_status=ADOPTED,
            process_instance_id=instance.id,
        )

    def _record(self, attempt: _Attempt, instance_id: str, body: bytes) -> None:
        """Record the instance; the client gets it even if the record fails."""
        try:
            recorded = self.store.record_started(
                attempt.identity,
                attempt.reservation_id,
                attempt.number,
                instance_id,
                body,
            )
        except DatabaseUnavailable:
            # the instance exists, so answering with it is right; the row stays
            # pending, and the next request or reconciler adopts the instance
            log.warning(
                "could not record instance %s of %s; it will be adopted later",
                instance_id,
                attempt.identity.describe(),
            )
            return
        if not recorded:
            log.warning(
                "attempt %d of %s is stale; a newer attempt owns the reservation",
                attempt.number,
                attempt.identity.describe(),
            )

    def _lookup(
        self, identity: ReservationIdentity, headers: Mapping[str, str]
    ) -> list[FoundInstance] | None:
        """Return the engine's instances for the identity, or None if it can't tell."""
        try:
            found = self.engine.find_instances(identity, headers)
        except (EngineUnreachable, EngineOutcomeUnknown) as exc:
            log.warning("lookup of %s failed: %s", identity.describe(), exc)
            RECONCILIATIONS.labels("failed").inc()
            return None
        found = self._drop_other_callers_instances(identity, found)
        RECONCILIATIONS.labels("found" if found else "not-found").inc()
        return found

    def _drop_other_callers_instances(
        self, identity: ReservationIdentity, found: list[FoundInstance]
    ) -> list[FoundInstance]:
        """Leave out the instances that other callers recorded for the same key."""
        # the engine doesn't know the gateway's callers: a lookup finds every
        # caller's instance of the businessKey, and only unrecorded ones can be
        # this caller's. Limitation: two callers whose outcomes are both unknown
        # at once can't be told apart, and may each get the other's instance
        if not identity.caller or not found:
            return found
        taken = self.store.recorded_by_other_callers(
            identity, [instance.id for instance in found]
        )
        return [instance for instance in found if instance.id not in taken]

    def _start_response(
        self, identity: ReservationIdentity, instance: FoundInstance
    ) -> bytes:
        """Shape a found instance like the engine's answer to a start."""
        root = self.engine.engine_root(identity.engine_name, named=False)
        document: dict[str, Any] = {
            "links": [
                {
                    "method": "GET",
                    "href": f"{root}/process-instance/{instance.id}",
                    "rel": "self",
                }
            ],
            "id": instance.id,
            "definitionId": instance.definition_id,
            "businessKey": instance.business_key,
            "caseInstanceId": None,
            "ended": instance.ended,
            "suspended": instance.suspended,
            "tenantId": instance.tenant_id,
            "definitionKey": identity.process_definition_key,
        }
        return orjson.dumps(document)

    # without a reservation

    def _identity(
        self, request: StartRequest, headers: Mapping[str, str], named: bool
    ) -> ReservationIdentity | EngineAnswer:
        """Work out the reservation identity; an engine answer means it refused."""
        target = request.target
        assert request.business_key is not None
        if target.process_definition_id is None:
            return ReservationIdentity(
                engine_name=target.engine_name,
                tenant_id=target.tenant_id,
                process_definition_key=target.process_definition_key or "",
                business_key=request.business_key,
                caller=request.caller,
            )

        definition = self._definition(target, headers, named)
        if isinstance(definition, EngineAnswer):
            return definition
        key, tenant_id = definition
        return ReservationIdentity(
            target.engine_name, tenant_id, key, request.business_key, request.caller
        )

    def _definition(
        self, target: StartTarget, headers: Mapping[str, str], named: bool
    ) -> tuple[str, str | None] | EngineAnswer:
        """Return a definition id's key and tenant, cached or from the engine."""
        assert target.process_definition_id is not None
        cache_key = (target.engine_name, target.process_definition_id)
        cached = self.definitions.get(cache_key)
        if cached is not None:
            return cached
        try:
            answer = self.engine.process_definition(
                target.engine_name, target.process_definition_id, named, headers
            )
        except (EngineUnreachable, EngineOutcomeUnknown) as exc:
            raise EngineUnavailable(
                "the engine can't be reached", retry_after=1
            ) from exc
        if answer.status != 200:
            return answer
        document = answer.json()
        definition = (str(document["key"]), document.get("tenantId"))
        self.definitions.put(cache_key, definition)
        return definition

    def _forward_unreserved(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> EngineAnswer:
        try:
            return self.engine.start(url, body, headers)
        except EngineUnreachable as exc:
            raise EngineUnavailable(
                "the engine can't be reached", retry_after=1
            ) from exc
        except EngineOutcomeUnknown as exc:
            # the transport's text names the engine's address, so only the log
            # gets it
            log.warning("outcome unknown for a start without a businessKey: %s", exc)
            raise StartOutcomeUnknown(
                "the engine may or may not have started the instance",
                retry_after=1,
            ) from exc


class _DefinitionCache:
    """Remember the key and tenant of definition ids, which never change."""

    MAX_ENTRIES = 10_000

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[str, str | None]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> tuple[str, str | None] | None:
        return self._entries.get(key)

    def put(self, key: tuple[str, str], value: tuple[str, str | None]) -> None:
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = value


def _in_flight(identity: ReservationIdentity) -> StartInProgress:
    return StartInProgress(
        f"{identity.describe()} is reserved by a request still in flight",
        retry_after=1,
    )


def _pass_through(answer: EngineAnswer, outcome: str) -> StartResult:
    content_type = answer.headers.get("Content-Type", "application/json")
    headers = {"Content-Type": content_type}
    # RFC 9110, section 11.6.1: a 401 names how to authenticate
    challenge = answer.headers.get("WWW-Authenticate")
    if challenge is not None:
        headers["WWW-Authenticate"] = challenge
    return StartResult(answer.status, answer.body, headers, outcome)


def _instance_id(body: bytes) -> str:
    try:
        document = orjson.loads(body)
        return str(document["id"])
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise StartOutcomeUnknown(
            "the engine accepted the start but its answer names no instance",
            retry_after=1,
        ) from exc
