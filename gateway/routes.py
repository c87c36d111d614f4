"""The HTTP routes: the three start endpoints, pass-through and health."""

from __future__ import annotations

import dataclasses
import logging
from typing import IO
from urllib.parse import quote
from urllib.parse import urlsplit

import orjson
from flask import Blueprint
from flask import Response
from flask import current_app
from flask import request
from gunicorn.http.errors import NoMoreData
from gunicorn.http.errors import ParseException

from gateway import links
from gateway import metrics as gateway_metrics
from gateway import openapi
from gateway import outcomes
from gateway import pass_through
from gateway import tracing
from gateway.config import Settings
from gateway.engine import DEFAULT_ENGINE
from gateway.engine import EngineOutcomeUnknown
from gateway.engine import EngineUnreachable
from gateway.errors import DatabaseUnavailable
from gateway.errors import EngineConnectionLost
from gateway.errors import EngineUnavailable
from gateway.errors import GatewayError
from gateway.errors import InvalidRequest
from gateway.errors import PathNotFound
from gateway.errors import PayloadTooLarge
from gateway.responses import JSON
from gateway.schema import head_revision
from gateway.services import Services
from gateway.start_request import StartLimits
from gateway.start_request import StartTarget
from gateway.start_request import parse_start
from gateway.starts import StartResult

log = logging.getLogger(__name__)


def services() -> Services:
    """Return the services of the current app."""
    found: Services = current_app.extensions["gateway"]
    return found


def create_blueprint(base: str) -> Blueprint:
    """Build the routes under the configured base path."""
    bp = Blueprint("gateway", __name__)
    # Flask would answer OPTIONS on the start paths itself, but a browser's CORS
    # preflight needs the engine's answer, so OPTIONS goes to pass-through
    for prefix in ("", "/engine/<engine_name>"):
        root = f"{base}{prefix}/process-definition"
        bp.add_url_rule(
            f"{root}/key/<key>/start",
            view_func=start_by_key,
            methods=["POST"],
            provide_automatic_options=False,
        )
        bp.add_url_rule(
            f"{root}/key/<key>/tenant-id/<tenant_id>/start",
            view_func=start_by_key_and_tenant,
            methods=["POST"],
            provide_automatic_options=False,
        )
        bp.add_url_rule(
            f"{root}/<definition_id>/start",
            view_func=start_by_id,
            methods=["POST"],
            provide_automatic_options=False,
        )
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
    if base:
        # at the root the base is "", which Flask can't route; "/" reaches
        # pass-through with an empty path, which it refuses anyway
        bp.add_url_rule(base, view_func=forward, methods=methods, defaults={"rest": ""})
    bp.add_url_rule(f"{base}/<path:rest>", view_func=forward, methods=methods)
    # Limitation: with the base path at the root these shadow the engine's
    # paths of the same name, so the engine's own GET /metrics can't be reached
    bp.add_url_rule("/healthz", view_func=healthz)
    bp.add_url_rule("/readyz", view_func=readyz)
    bp.add_url_rule("/metrics", view_func=metrics)
    bp.add_url_rule("/openapi.json", view_func=openapi_document)
    return bp


# start endpoints


def start_by_key(key: str, engine_name: str | None = None) -> Response:
    """Start the latest version of a definition without tenant, idempotently."""
    target = StartTarget(engine_name or DEFAULT_ENGINE, process_definition_key=key)
    return _start(target, named=engine_name is not None)


def start_by_key_and_tenant(
    key: str, tenant_id: str, engine_name: str | None = None
) -> Response:
    """Start the latest version of a tenant's definition, idempotently."""
    target = StartTarget(
        engine_name or DEFAULT_ENGINE, process_definition_key=key, tenant_id=tenant_id
    )
    return _start(target, named=engine_name is not None)


def start_by_id(definition_id: str, engine_name: str | None = None) -> Response:
    """Start one definition version by id, idempotently."""
    target = StartTarget(
        engine_name or DEFAULT_ENGINE, process_definition_id=definition_id
    )
    return _start(target, named=engine_name is not None)


def _start(target: StartTarget, named: bool) -> Response:
    gateway = services()
    decision = _Decision(target)
    try:
        caller = _authenticate(gateway)
        body = _read_body(gateway.settings.max_body_bytes)
        start = parse_start(
            target,
            body,
            gateway.settings.require_business_key,
            _limits(gateway.settings),
        )
        start = dataclasses.replace(start, caller=caller)
        decision.business_key = start.business_key
        result = gateway.starts.start(
            start, tracing.outgoing_headers(gateway.api_keys.enabled), named
        )
        decision.settle(result)
    except GatewayError as exc:
        decision.outcome = exc.outcome or exc.error_type
        raise
    finally:
        decision.count()
        decision.log()

    return _start_response(result, gateway.settings)


class _Decision:
    """Collect what one start decided; count it, and log it as one structured line."""

    def __init__(self, target: StartTarget) -> None:
        self.target = target
        self.business_key: str | None = None
        self.outcome = "failed"
        self.process_instance_id: str | None = None

    def settle(self, result: StartResult) -> None:
        self.outcome = result.outcome
        self.process_instance_id = result.process_instance_id

    def count(self) -> None:
        # a start without a businessKey passed unprotected, so it has no outcome
        if self.business_key is not None and self.outcome in outcomes.COUNTED:
            gateway_metrics.START_OUTCOMES.labels(self.outcome).inc()

    def log(self) -> None:
        # every start passes here, so build the structured fields only if used
        if not log.isEnabledFor(logging.INFO):
            return
        log.info(
            "start %s for businessKey %r",
            self.outcome,
            self.business_key,
            extra={
                "event": "start",
                "request_id": tracing.current_request_id(),
                # the address of the client, as trusted X-Forwarded-For names it
                "client": request.remote_addr,
                "engine": self.target.engine_name,
                "processDefinitionKey": self.target.process_definition_key,
                "processDefinitionId": self.target.process_definition_id,
                "businessKey": self.business_key,
                "tenantId": self.target.tenant_id,
                "outcome": self.outcome,
                "processInstanceId": self.process_instance_id,
                "durationMs": tracing.elapsed_ms(),
            },
        )


def _authenticate(gateway: Services) -> str:
    """Return the caller named by the gateway's own API key, or '' when it is off."""
    if not gateway.api_keys.enabled:
        return ""
    return gateway.api_keys.authenticate(dict(request.headers))


def _limits(settings: Settings) -> StartLimits:
    return StartLimits(
        business_key_length=settings.max_business_key_length,
        variable_name_length=settings.max_variable_name_length,
        json_depth=settings.max_json_depth,
    )


def _read_body(limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(
            f"the body is {request.content_length} bytes, the limit is {limit}"
        )
    body = _RequestBody(request.stream).read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"the body is larger than the limit of {limit} bytes")
    return body


class _RequestBody:
    """Read the client's body, turning gunicorn's errors for a broken one into 400."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream

    def read(self, size: int = -1) -> bytes:
        try:
            return self.stream.read(size)
        except (ParseException, NoMoreData) as exc:
            # gunicorn decodes a chunked body only as the view reads it, so a
            # bad chunk, or a body that ends early, first shows up here
            raise InvalidRequest("the request body is malformed or ends early") from exc


def _start_response(result: StartResult, settings: Settings) -> Response:
    body = links.rewrite(
        result.body, settings.engine_base.encode(), _gateway_base(settings).encode()
    )
    response = Response(body, result.status, dict(result.headers))
    if result.idempotency_status is not None:
        response.headers["Idempotency-Status"] = result.idempotency_status
    if result.idempotency_status == "replayed":
        response.headers["Idempotent-Replayed"] = "true"
    return response


# pass-through


def forward(rest: str) -> Response:
    """Pass any other request under the base path through to the engine."""
    gateway = services()
    if not gateway.settings.pass_through:
        raise PathNotFound(f"path '{request.path}' is not served by the gateway")

    _authenticate(gateway)
    raw_path = _raw_path(gateway.settings.base_path)
    pass_through.check_raw_path(raw_path)
    suffix = raw_path[len(gateway.settings.base_path) :]
    try:
        answer = pass_through.forward(
            gateway.engine,
            method=request.method,
            suffix=suffix,
            query=request.query_string.decode("latin-1"),
            headers=tracing.outgoing_headers(gateway.api_keys.enabled),
            body=_RequestBody(request.stream),
            gateway_base=_gateway_base(gateway.settings),
        )
    except EngineUnreachable as exc:
        raise EngineUnavailable("the engine can't be reached", retry_after=1) from exc
    except EngineOutcomeUnknown as exc:
        raise _connection_lost(exc) from exc

    response = Response(
        answer.body, answer.status, answer.headers, direct_passthrough=True
    )
    if not any(name.lower() == "content-type" for name, _ in answer.headers):
        del response.headers["Content-Type"]
    return response


def _connection_lost(exc: EngineOutcomeUnknown) -> EngineConnectionLost:
    """Log why a pass-through lost the engine, and tell the client less."""
    # the transport's text names the engine's internal host and port, which
    # the client must not learn, so only the log gets it
    log.warning(
        "pass-through of request %s lost the engine connection: %s",
        tracing.current_request_id(),
        exc,
    )
    return EngineConnectionLost("the connection to the engine was lost", retry_after=1)


def _raw_path(base: str) -> str:
    """Return the path as the client sent it, still percent-encoded."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or ""
    path = (
        urlsplit(raw).path
        if raw.startswith(("http://", "https://"))
        else raw.split("?", 1)[0]
    )
    if path.startswith(base):
        return path
    # the server gave no raw URI, so rebuild one from the decoded path
    return quote(request.path, safe="/:@!$&'()*+,=-._~")


def _gateway_base(settings: Settings) -> str:
    """Return the base URL under which this client reached the gateway."""
    # scheme and host as werkzeug reads them, after any trusted X-Forwarded-*;
    # request.host_url would also convert the URL to an IRI on every request
    return f"{request.scheme}://{request.host}{settings.base_path}"


# operations


def healthz() -> Response:
    """Answer that the process is alive."""
    return Response(b'{"status":"ok"}', 200, content_type=JSON)


def readyz() -> Response:
    """Answer whether the database is reachable and its schema is at head."""
    gateway = services()
    head = head_revision()
    reachable, engine_version = gateway.engine.probe()
    report: dict[str, object] = {
        "engine": {"reachable": reachable, "version": engine_version},
        "schema": {"head": head},
    }
    try:
        revision = gateway.store.schema_revision()
    except DatabaseUnavailable:
        return _report(503, report, "the database can't be reached")
    report["schema"] = {"head": head, "current": revision}
    if revision != head:
        return _report(503, report, f"the schema is at {revision}, not at head {head}")
    return _report(200, report, None)


def metrics() -> Response:
    """Expose the Prometheus metrics of every worker."""
    body = gateway_metrics.render(services().store)
    return Response(body, 200, content_type=gateway_metrics.CONTENT_TYPE)


def openapi_document() -> Response:
    """Serve the OpenAPI document of the gateway's own endpoints."""
    body = openapi.document(services().settings.base_path)
    return Response(body, 200, content_type=JSON)


def _report(status: int, report: dict[str, object], reason: str | None) -> Response:
    document = {"status": "ready" if reason is None else "unavailable", **report}
    if reason is not None:
        document["reason"] = reason
    return Response(orjson.dumps(document), status, content_type=JSON)
