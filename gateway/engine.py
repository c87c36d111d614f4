"""The engine client: every HTTP call from the gateway to the engine lives here.

The client never retries a start. A retry is only safe once the reservation says
so, and that decision belongs to the start logic, not to the transport.
"""

from __future__ import annotations

import dataclasses
import http.client
import logging
import time
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote
from urllib.parse import urlencode

import orjson
import urllib3
from urllib3.exceptions import ConnectTimeoutError
from urllib3.exceptions import HTTPError
from urllib3.exceptions import NewConnectionError
from urllib3.exceptions import ReadTimeoutError

from gateway.config import Settings
from gateway.engine_connections import EngineConnections
from gateway.start_request import ReservationIdentity
from gateway.start_request import StartTarget

log = logging.getLogger(__name__)

DEFAULT_ENGINE = "default"
_ENGINE_NAMES_TTL = 60.0

# RFC 9110, section 7.6.1: these describe one connection and are never forwarded
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# the gateway sets these itself for the engine
_NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "accept-encoding", "expect"}


class EngineUnreachable(Exception):
    """The connection to the engine failed, so the request was never sent."""


class EngineOutcomeUnknown(Exception):
    """The request may have reached the engine, but no answer came back."""

    def __init__(self, reason: str, timed_out: bool) -> None:
        super().__init__(reason)
        self.timed_out = timed_out


@dataclasses.dataclass(frozen=True)
class EngineAnswer:
    """A complete answer from the engine."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def has_engine_error_body(self) -> bool:
        """Tell whether the body is the engine's own JSON error shape."""
        try:
            document = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return False
        return (
            isinstance(document, dict) and "type" in document and "message" in document
        )

    def json(self) -> Any:
        """Decode the body as JSON."""
        return orjson.loads(self.body)


@dataclasses.dataclass(frozen=True)
class FoundInstance:
    """A process instance that the engine knows for a reservation identity."""

    id: str
    definition_id: str | None
    business_key: str
    tenant_id: str | None
    start_time: str | None
    ended: bool
    suspended: bool


class EngineClient:
    """Talk to the engine over kept-alive connections with explicit timeouts.

    Starts and reads go over connections lent one call at a time; pass-through streams
    over a urllib3 pool.
    """

    def __init__(self, settings: Settings) -> None:
        self.base = settings.engine_base
        self._read_timeout = settings.engine_timeout
        self.connections = EngineConnections(self.base, settings.engine_connect_timeout)
        self.timeout = urllib3.Timeout(
            connect=settings.engine_connect_timeout, read=settings.engine_timeout
        )
        # one pool for the one engine host: a pool refuses any other host, and
        # skipping the pool manager's per-request lookup is cheaper
        self.http = urllib3.connection_from_url(
            self.base,
            maxsize=max(settings.threads, 4),
            timeout=self.timeout,
            # never retry on the transport level: a retried start could start twice
            retries=False,
        )
        parts = urllib3.util.parse_url(self.base)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._names: tuple[float, frozenset[str]] | None = None

    # paths

    def engine_root(self, engine_name: str, named: bool) -> str:
        """Return the URL of the default or a named engine's resources."""
        if not named and engine_name == DEFAULT_ENGINE:
            return self.base
        return f"{self.base}/engine/{quote(engine_name, safe='')}"

    def start_url(self, target: StartTarget, named: bool) -> str:
        """Return the engine URL of the start endpoint that a target names."""
        root = self.engine_root(target.engine_name, named) + "/process-definition"
        if target.process_definition_id is not None:
            return f"{root}/{quote(target.process_definition_id, safe='')}/start"
        key = quote(target.process_definition_key or "", safe="")
        if target.tenant_id is not None:
            return (
                f"{root}/key/{key}/tenant-id/{quote(target.tenant_id, safe='')}/start"
            )
        return f"{root}/key/{key}/start"

    # calls

    def start(self, url: str, body: bytes, headers: Mapping[str, str]) -> EngineAnswer:
        """Send one start to the engine, exactly once."""
        outgoing = forwardable_headers(headers)
        outgoing["Content-Type"] = "application/json"
        outgoing["Accept"] = "application/json"
        return self._call("POST", url, body, outgoing, self._read_timeout)

    def get(
        self, url: str, headers: Mapping[str, str], timeout: float | None = None
    ) -> EngineAnswer:
        """Make a read-only call to the engine."""
        outgoing = forwardable_headers(headers)
        outgoing["Accept"] = "application/json"
        return self._call("GET", url, None, outgoing, timeout or self._read_timeout)

    def process_definition(
        self,
        engine_name: str,
        definition_id: str,
        named: bool,
        headers: Mapping[str, str],
    ) -> EngineAnswer:
        """Fetch a process definition by id."""
        root = self.engine_root(engine_name, named)
        return self.get(
            f"{root}/process-definition/{quote(definition_id, safe='')}", headers
        )

    def find_instances(
        self, identity: ReservationIdentity, headers: Mapping[str, str]
    ) -> list[FoundInstance]:
        """Look the identity up in the engine, history first, oldest first."""
        root = self.engine_root(identity.engine_name, named=False)
        tenant = (
            {"tenantIdIn": identity.tenant_id}
            if identity.tenant_id
            else {"withoutTenantId": "true"}
        )
        history = self._list(
            f"{root}/history/process-instance",
            {
                "processInstanceBusinessKey": identity.business_key,
                "processDefinitionKey": identity.process_definition_key,
                **tenant,
                "sortBy": "startTime",
                "sortOrder": "asc",
            },
            headers,
        )
        if history:
            return [_from_history(item) for item in history]

        # an engine with history level none only knows the running instances.
        # Limitation: the runtime query can't sort by start time, so "oldest
        # first" holds only for what the history finds
        runtime = self._list(
            f"{root}/process-instance",
            {
                "businessKey": identity.business_key,
                "processDefinitionKey": identity.process_definition_key,
                **tenant,
            },
            headers,
        )
        return [_from_runtime(item) for item in runtime]

    def stream(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: Iterable[bytes] | Any | None,
        chunked: bool,
    ) -> urllib3.BaseHTTPResponse:
        """Forward any request and return the engine's answer unread, for streaming."""
        try:
            return self.http.urlopen(
                method,
                self._target(url),
                body=body,
                headers=forwardable_headers(headers, streamed=True),
                preload_content=False,
                decode_content=False,
                chunked=chunked,
                redirect=False,
            )
        except (ConnectTimeoutError, NewConnectionError) as exc:
            raise EngineUnreachable(str(exc)) from exc
        except HTTPError as exc:
            raise EngineOutcomeUnknown(
                str(exc), isinstance(exc, ReadTimeoutError)
            ) from exc

    def engine_names(self, headers: Mapping[str, str]) -> frozenset[str] | None:
        """Return the names of the engine's process engines; None if it won't say."""
        cached = self._names
        if cached is not None and time.monotonic() < cached[0]:
            return cached[1]
        try:
            answer = self.get(f"{self.base}/engine", headers, timeout=5.0)
        except (EngineUnreachable, EngineOutcomeUnknown):
            return None
        if answer.status != 200:
            return None
        names = frozenset(str(item.get("name")) for item in answer.json())
        # engines are added or removed only by redeploying the engine itself
        self._names = (time.monotonic() + _ENGINE_NAMES_TTL, names)
        return names

    def probe(self) -> tuple[bool, str | None]:
        """Tell whether the engine answers at all, and its version if it says."""
        try:
            answer = self.get(f"{self.base}/version", {}, timeout=2.0)
        except (EngineUnreachable, EngineOutcomeUnknown):
            return False, None
        if answer.status != 200:
            # an engine that wants credentials still answers
            return True, None
        version = answer.json().get("version")
        return True, str(version) if version is not None else None

    def _call(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: dict[str, str],
        timeout: float,
    ) -> EngineAnswer:
        """Make one call on a lent connection and read the whole answer."""
        target = self._target(url)
        try:
            connection = self.connections.acquire(timeout)
        except OSError as exc:
            raise EngineUnreachable(str(exc)) from exc

        try:
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except TimeoutError as exc:
            self.connections.discard(connection)
            raise EngineOutcomeUnknown(f"no answer within {timeout}s", True) from exc
        except (OSError, http.client.HTTPException) as exc:
            # some or all of the request may have gone out, so the engine may
            # have acted on it
            self.connections.discard(connection)
            raise EngineOutcomeUnknown(f"connection lost: {exc}", False) from exc
        except BaseException:
            # a connection left halfway through a request can't carry the next
            self.connections.discard(connection)
            raise

        if response.will_close:
            self.connections.discard(connection)
        else:
            self.connections.release(connection)
        # urllib3's header dict joins repeated headers, such as several
        # WWW-Authenticate challenges, where http.client's returns the first
        answered = urllib3.HTTPHeaderDict(response.getheaders())
        return EngineAnswer(response.status, answered, data)

    def _target(self, url: str) -> str:
        """Return the request target of a URL under the engine's base URL."""
        # every URL is built from the base; anything else is a bug, and must
        # never turn into a request to some other host
        if not url.startswith(self._origin):
            raise ValueError(f"url {url!r} is not under the engine's base URL")
        return url[len(self._origin) :] or "/"

    def _list(
        self, url: str, query: dict[str, str], headers: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        answer = self.get(f"{url}?{urlencode(query)}", headers)
        if answer.status != 200:
            log.warning("engine lookup %s answered %s", url, answer.status)
            raise EngineOutcomeUnknown(f"lookup answered {answer.status}", False)
        items = answer.json()
        return items if isinstance(items, list) else []


def forwardable_headers(
    headers: Mapping[str, str], streamed: bool = False
) -> dict[str, str]:
    """Return the end-to-end headers of a request, without the hop-by-hop ones.

    A streamed request keeps its length and accepted encodings, because its body
    and answer pass through untouched.
    """
    listed = {
        name.strip().lower()
        for name in headers.get("Connection", "").split(",")
        if name.strip()
    }
    dropped = _NOT_FORWARDED | listed
    if streamed:
        dropped = dropped - {"accept-encoding", "content-length"}
    return {
        name: value for name, value in headers.items() if name.lower() not in dropped
    }


def iter_body(response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    """Yield a streamed answer in chunks, then hand its connection back to the pool."""
    try:
        yield from response.stream(64 * 1024, decode_content=False)
    finally:
        response.release_conn()


def _from_history(item: dict[str, Any]) -> FoundInstance:
    return FoundInstance(
        id=str(item["id"]),
        definition_id=item.get("processDefinitionId"),
        business_key=str(item.get("businessKey")),
        tenant_id=item.get("tenantId"),
        start_time=item.get("startTime"),
        ended=item.get("endTime") is not None,
        suspended=item.get("state") == "SUSPENDED",
    )


def _from_runtime(item: dict[str, Any]) -> FoundInstance:
    return FoundInstance(
        id=str(item["id"]),
        definition_id=item.get("definitionId"),
        business_key=str(item.get("businessKey")),
        tenant_id=item.get("tenantId"),
        start_time=None,
        ended=bool(item.get("ended")),
        suspended=bool(item.get("suspended")),
    )
