"""Parse and validate a start request before anything is reserved.

A start request is what a client sends to one of the engine's three start
endpoints. Parsing checks everything that can be checked without the engine, so
that a malformed request is refused before a reservation exists.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import Any

import orjson

from gateway.errors import BusinessKeyMissing
from gateway.errors import InvalidRequest

MAX_SEGMENT_LENGTH = 255

_UNSAFE_SEGMENT = re.compile(r"[\x00-\x1f\x7f/\\]")
_STRING_FIELDS = ("businessKey", "caseInstanceId")
_BOOLEAN_FIELDS = ("skipCustomListeners", "skipIoMappings", "withVariablesInReturn")


@dataclasses.dataclass(frozen=True)
class StartLimits:
    """How large the parts of a start body may be."""

    # the engine keeps the businessKey and variable names in varchar(255) columns
    business_key_length: int = 255
    variable_name_length: int = 255
    json_depth: int = 32


@dataclasses.dataclass(frozen=True)
class StartTarget:
    """The start endpoint that a request names: by key, key and tenant, or id."""

    engine_name: str
    process_definition_key: str | None = None
    tenant_id: str | None = None
    process_definition_id: str | None = None

    def __post_init__(self) -> None:
        check_segment("engine name", self.engine_name)
        for label, value in (
            ("process definition key", self.process_definition_key),
            ("tenant id", self.tenant_id),
            ("process definition id", self.process_definition_id),
        ):
            if value is not None:
                check_segment(label, value)


@dataclasses.dataclass(frozen=True)
class ReservationIdentity:
    """What makes two starts the same start, whatever the definition version."""

    engine_name: str
    tenant_id: str | None
    process_definition_key: str
    business_key: str
    # the client that the gateway's own authentication named; empty without it
    caller: str = ""

    def describe(self) -> str:
        """Return a short description for log lines and error messages."""
        # repr escapes CR, LF and other unprintable characters, so a businessKey
        # can't forge a line of a text log
        tenant = f" tenant {self.tenant_id!r}" if self.tenant_id else ""
        key = self.process_definition_key
        return f"businessKey {self.business_key!r} of {key!r}{tenant}"


@dataclasses.dataclass(frozen=True)
class StartRequest:
    """A validated start: its target, the body as sent, and its fingerprint."""

    target: StartTarget
    body: bytes
    business_key: str | None
    fingerprint: bytes
    caller: str = ""


def check_segment(label: str, value: str) -> None:
    """Refuse a path segment that could address a different engine endpoint."""
    if not value or value in (".", ".."):
        raise InvalidRequest(f"{label} {value!r} is not a valid path segment")
    if len(value) > MAX_SEGMENT_LENGTH:
        raise InvalidRequest(f"{label} is longer than {MAX_SEGMENT_LENGTH} characters")
    if _UNSAFE_SEGMENT.search(value):
        raise InvalidRequest(
            f"{label} {value!r} contains a slash or a control character"
        )


def parse_start(
    target: StartTarget,
    body: bytes,
    require_business_key: bool,
    limits: StartLimits = StartLimits(),
) -> StartRequest:
    """Validate a start body and compute its fingerprint."""
    document = _load_object(body)
    _check_depth(document, limits.json_depth)
    _check_types(document, limits)

    business_key = document.get("businessKey")
    if business_key is None or business_key == "":
        if require_business_key:
            raise BusinessKeyMissing(
                "the start has no businessKey, which idempotency needs"
            )
        business_key = None
    elif len(business_key) > limits.business_key_length:
        raise InvalidRequest(
            f"businessKey is {len(business_key)} characters long, "
            f"the limit is {limits.business_key_length}"
        )
    elif "\x00" in business_key:
        # PostgreSQL text can't hold NUL, and no engine database can either
        raise InvalidRequest("businessKey contains a NUL character")

    return StartRequest(
        target=target,
        body=body,
        business_key=business_key,
        fingerprint=fingerprint(document),
    )


def fingerprint(document: Any) -> bytes:
    """Return the SHA-256 of the document's canonical JSON (sorted keys, compact)."""
    canonical = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).digest()


def _load_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidRequest(
            f"the body must be a JSON object, got {_json_type(document)}"
        )
    return document


def _check_depth(document: Any, limit: int) -> None:
    """Refuse JSON nested deeper than the limit, without recursion."""
    # the depth counts containers: {"businessKey": "k"} is one level deep
    level = [document] if isinstance(document, (dict, list)) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            raise InvalidRequest(f"the body is nested deeper than {limit} levels")
        children: list[Any] = []
        for container in level:
            values = container.values() if isinstance(container, dict) else container
            children.extend(v for v in values if isinstance(v, (dict, list)))
        level = children


def _check_types(document: dict[str, Any], limits: StartLimits) -> None:
    for name in _STRING_FIELDS:
        _expect(document, name, str, "a string")
    for name in _BOOLEAN_FIELDS:
        _expect(document, name, bool, "a boolean")
    _expect(document, "startInstructions", list, "an array")
    _expect(document, "variables", dict, "an object")

    for index, instruction in enumerate(document.get("startInstructions") or []):
        _check_instruction(index, instruction, limits)

    _check_variables(document.get("variables") or {}, limits, "")


def _check_instruction(index: int, instruction: Any, limits: StartLimits) -> None:
    # the engine answers a null instruction with a NullPointerException
    if not isinstance(instruction, dict):
        raise InvalidRequest(
            f"start instruction {index} must be an object, "
            f"got {_json_type(instruction)}"
        )

    # the engine stores these variables like the start's own, so their names go
    # in the same varchar(255) column
    owner = f" of start instruction {index}"
    _expect(instruction, "variables", dict, "an object", f"start instruction {index} ")
    _check_variables(instruction.get("variables") or {}, limits, owner)


def _check_variables(
    variables: dict[str, Any], limits: StartLimits, owner: str
) -> None:
    """Refuse a variable whose name is too long or whose value isn't an object."""
    for name, variable in variables.items():
        if len(name) > limits.variable_name_length:
            raise InvalidRequest(
                f"a variable name{owner} is {len(name)} characters long, "
                f"the limit is {limits.variable_name_length}"
            )
        if not isinstance(variable, dict):
            raise InvalidRequest(
                f"variable '{name}'{owner} must be an object, "
                f"got {_json_type(variable)}"
            )
        prefix = f"variable '{name}'{owner} field "
        _expect(variable, "type", str, "a string", prefix)
        _expect(variable, "valueInfo", dict, "an object", prefix)


def _expect(
    document: dict[str, Any], name: str, kind: type, described: str, prefix: str = ""
) -> None:
    value = document.get(name)
    if value is None:
        return
    # bool is an int in Python, so check it on its own
    if isinstance(value, kind) and not (kind is not bool and isinstance(value, bool)):
        return
    raise InvalidRequest(
        f"{prefix}'{name}' must be {described}, got {_json_type(value)}"
    )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
