"""The OpenAPI document of the gateway's own endpoints.

The start endpoints use the engine's request and response schemas
(StartProcessInstanceDto, ProcessInstanceWithVariablesDto, ExceptionDto), so a
client generated from the engine's own document fits the gateway too.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson

_SEGMENT = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "pattern": "^[^/\\\\\\x00-\\x1f\\x7f]+$",
}

_SCHEMAS: dict[str, Any] = {
    "VariableValueDto": {
        "type": "object",
        "properties": {
            "value": {},
            "type": {"type": "string", "nullable": True},
            "valueInfo": {
                "type": "object",
                "nullable": True,
                "additionalProperties": True,
            },
        },
    },
    "StartProcessInstanceDto": {
        "type": "object",
        "required": ["businessKey"],
        "properties": {
            "businessKey": {
                "type": "string",
                "minLength": 1,
                "maxLength": 255,
                "example": "order-1",
            },
            "variables": {
                "type": "object",
                "nullable": True,
                "additionalProperties": {
                    "$ref": "#/components/schemas/VariableValueDto"
                },
            },
            "caseInstanceId": {"type": "string", "nullable": True},
            "startInstructions": {
                "type": "array",
                "nullable": True,
                "items": {"type": "object", "additionalProperties": True},
            },
            "skipCustomListeners": {"type": "boolean", "nullable": True},
            "skipIoMappings": {"type": "boolean", "nullable": True},
            "withVariablesInReturn": {"type": "boolean", "nullable": True},
        },
    },
    "LinkDto": {
        "type": "object",
        "properties": {
            "method": {"type": "string"},
            "href": {"type": "string"},
            "rel": {"type": "string"},
        },
    },
    "ProcessInstanceWithVariablesDto": {
        "type": "object",
        "properties": {
            "links": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/LinkDto"},
            },
            "id": {"type": "string"},
            "definitionId": {"type": "string", "nullable": True},
            "definitionKey": {"type": "string", "nullable": True},
            "businessKey": {"type": "string", "nullable": True},
            "caseInstanceId": {"type": "string", "nullable": True},
            "ended": {"type": "boolean"},
            "suspended": {"type": "boolean"},
            "tenantId": {"type": "string", "nullable": True},
            "variables": {
                "type": "object",
                "nullable": True,
                "additionalProperties": {
                    "$ref": "#/components/schemas/VariableValueDto"
                },
            },
        },
    },
    "ExceptionDto": {
        "type": "object",
        "required": ["type", "message"],
        "properties": {
            "type": {"type": "string"},
            "message": {"type": "string"},
            "code": {"type": "integer", "nullable": True},
            "processInstanceId": {"type": "string", "nullable": True},
        },
    },
}


_INSTANCE = "#/components/schemas/ProcessInstanceWithVariablesDto"
_EXAMPLES = {"key": "gateway-waiting", "engineName": "default"}


def _error(
    description: str, retry: bool = False, engine_text: bool = False
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/ExceptionDto"}
            }
        },
    }
    if engine_text:
        # the engine answers a body that its JSON mapper can't read in plain text
        response["content"]["text/plain"] = {"schema": {"type": "string"}}
    if retry:
        response["headers"] = {
            "Retry-After": {
                "schema": {"type": "integer"},
                "description": "seconds to wait",
            }
        }
    return response


def _start_operation(
    operation_id: str, summary: str, parameters: list[str]
) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": summary,
        "parameters": [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": _SEGMENT,
                **({"example": _EXAMPLES[name]} if name in _EXAMPLES else {}),
            }
            for name in parameters
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/StartProcessInstanceDto"}
                }
            },
        },
        "responses": {
            "200": {
                "description": "created, replayed or adopted (see Idempotency-Status)",
                "headers": {
                    "Idempotency-Status": {
                        "schema": {
                            "type": "string",
                            "enum": ["created", "replayed", "adopted"],
                        }
                    },
                    "Idempotent-Replayed": {
                        "schema": {"type": "string", "enum": ["true"]}
                    },
                },
                "content": {"application/json": {"schema": {"$ref": _INSTANCE}}},
            },
            "400": _error(
                "malformed start, or no businessKey; nothing reserved",
                engine_text=True,
            ),
            "401": _error("the engine wants credentials"),
            "403": _error("the engine refused the caller"),
            "404": _error(
                "no such process definition or engine; the reservation is released"
            ),
            "409": _error("the same start is still in flight", retry=True),
            "413": _error("the body is over the size limit; nothing reserved"),
            "415": _error("the engine accepts JSON only"),
            "422": _error("the businessKey was used for a start with other content"),
            "500": _error(
                "the engine failed to start the instance; the reservation is released"
            ),
            "503": _error(
                "outcome unknown, or the database or engine is unavailable", retry=True
            ),
            "504": _error("the engine did not answer in time", retry=True),
        },
    }


def _starts(prefix: str, named: bool) -> dict[str, Any]:
    engine = ["engineName"] if named else []
    suffix = "ByEngine" if named else ""
    root = f"{prefix}/process-definition"
    return {
        f"{root}/key/{{key}}/start": {
            "post": _start_operation(
                f"startByKey{suffix}",
                "Start the latest version of a definition without tenant, once",
                [*engine, "key"],
            )
        },
        f"{root}/key/{{key}}/tenant-id/{{tenantId}}/start": {
            "post": _start_operation(
                f"startByKeyAndTenant{suffix}",
                "Start the latest version of a tenant's definition, once",
                [*engine, "key", "tenantId"],
            )
        },
        f"{root}/{{id}}/start": {
            "post": _start_operation(
                f"startById{suffix}",
                "Start a definition version by id, once",
                [*engine, "id"],
            )
        },
    }


def _operations() -> dict[str, Any]:
    plain = {"200": {"description": "ok"}, "503": {"description": "not ready"}}
    return {
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "responses": {"200": {"description": "alive"}},
            }
        },
        "/readyz": {"get": {"operationId": "readyz", "responses": plain}},
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text",
                        "content": {"text/plain": {}},
                    }
                },
            }
        },
    }


@functools.cache
def document(base_path: str) -> bytes:
    """Return the OpenAPI document for a base path, encoded once."""
    spec = {
        "openapi": "3.0.3",
        "info": {
            "title": "Idempotent Start Gateway",
            "version": "1",
            "description": "Starts process instances at most once per businessKey. "
            "Every other path under the base path passes through to the engine.",
        },
        "paths": {
            **_starts(base_path, named=False),
            **_starts(f"{base_path}/engine/{{engineName}}", named=True),
            **_operations(),
        },
        "components": {"schemas": _SCHEMAS},
    }
    return orjson.dumps(spec)
