"""The gateway serves its OpenAPI document, and its start operations fit the engine.

The engine in the tests serves no OpenAPI document of its own (its
`/openapi.json` answers 404), so the start schemas are held against what the
engine does: every documented start property is one that the engine reads, and
the engine's start answers and refusals fit the document, field for field.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
import schemathesis

from gateway import openapi
from tests.test_starts import deploy

BASE = "/engine-rest"
DOCUMENT = orjson.loads(openapi.document(BASE))
START_OPERATIONS = [
    operation["operationId"]
    for path, item in DOCUMENT["paths"].items()
    if path.endswith("/start")
    for operation in item.values()
]
START_PROPERTIES = DOCUMENT["components"]["schemas"]["StartProcessInstanceDto"][
    "properties"
]
# a value of the wrong JSON type for each type that a start property can have
WRONG_VALUES = {
    "string": {"not": "a string"},
    "boolean": "not a boolean",
    "array": {"not": "an array"},
    "object": ["not an object"],
}
TENANT = "tenant-openapi"


@pytest.fixture(scope="module")
def served(gateway: Any) -> dict[str, Any]:
    """The document that the running gateway serves."""
    answer = httpx.get(f"{gateway.url}/openapi.json", timeout=30)
    answer.raise_for_status()
    document: dict[str, Any] = answer.json()
    return document


@pytest.fixture(scope="module")
def path_values(engine_http: httpx.Client) -> dict[str, dict[str, str]]:
    """Return the path parameters that address a real definition, per operation."""
    key = f"openapi-{uuid.uuid4().hex[:8]}"
    deploy(engine_http, key, tenant=TENANT)
    waiting = engine_http.get("/process-definition/key/gateway-waiting")
    waiting.raise_for_status()
    plain = {"key": "gateway-waiting", "id": waiting.json()["id"]}
    with_tenant = {"key": key, "tenantId": TENANT}
    values = {}
    for operation_id in START_OPERATIONS:
        chosen = with_tenant if "Tenant" in operation_id else plain
        values[operation_id] = {**chosen, "engineName": "default"}
    return values


def find_operation(
    document: dict[str, Any], operation_id: str
) -> tuple[str, dict[str, Any]]:
    """Return an operation's path template, without the base path, and the operation."""
    for path, item in document["paths"].items():
        for operation in item.values():
            if operation["operationId"] == operation_id:
                return str(path).removeprefix(BASE), operation
    raise AssertionError(f"no operation {operation_id!r} in the document")


def component(document: dict[str, Any], reference: dict[str, Any]) -> Any:
    """Resolve a local `$ref` of the document."""
    node: Any = document
    for part in reference["$ref"].removeprefix("#/").split("/"):
        node = node[part]
    return node


def full_start(business_key: str) -> dict[str, Any]:
    """Return a start that sets every documented property to a valid value."""
    valid = {
        "businessKey": business_key,
        "variables": {"amount": {"value": 7, "type": "Integer", "valueInfo": {}}},
        "caseInstanceId": None,
        "startInstructions": [],
        "skipCustomListeners": False,
        "skipIoMappings": False,
        "withVariablesInReturn": True,
    }
    return {name: valid[name] for name in START_PROPERTIES}


@pytest.mark.parametrize("base_path", [BASE, "/camunda/engine-rest"])
def test_the_gateway_serves_the_document_of_its_base_path(
    base_path: str, start_gateway: Callable[..., Any]
) -> None:
    gateway = start_gateway(base_path=base_path)

    answer = httpx.get(f"{gateway.url}/openapi.json", timeout=30)

    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == orjson.loads(openapi.document(base_path))
    starts = {path for path in answer.json()["paths"] if path.endswith("/start")}
    assert starts == {
        f"{base_path}{engine}/process-definition{rest}"
        for engine in ("", "/engine/{engineName}")
        for rest in (
            "/key/{key}/start",
            "/key/{key}/tenant-id/{tenantId}/start",
            "/{id}/start",
        )
    }
    schemathesis.openapi.from_dict(answer.json()).validate()


@pytest.mark.parametrize("operation_id", START_OPERATIONS)
def test_the_engine_answers_each_start_operation_as_documented(
    operation_id: str,
    served: dict[str, Any],
    path_values: dict[str, dict[str, str]],
    engine_http: httpx.Client,
    client: httpx.Client,
) -> None:
    template, documented = find_operation(served, operation_id)
    path = template.format(**path_values[operation_id])
    answered = documented["responses"]["200"]["content"]["application/json"]
    instance = component(served, answered["schema"])
    link = component(served, instance["properties"]["links"]["items"])
    operation = schemathesis.openapi.from_dict(served).find_operation_by_id(
        operation_id
    )

    direct = engine_http.post(path, json=full_start(f"openapi-{uuid.uuid4().hex}"))
    through = client.post(path, json=full_start(f"openapi-{uuid.uuid4().hex}"))

    for answer in (direct, through):
        assert answer.status_code == 200, answer.text
        assert answer.headers["Content-Type"].startswith("application/json")
        operation.validate_response(answer)
        assert set(answer.json()) == set(instance["properties"])
        assert set(answer.json()["links"][0]) == set(link["properties"])


@pytest.mark.parametrize("name", list(START_PROPERTIES))
def test_every_documented_start_property_is_one_the_engine_reads(
    name: str, engine_http: httpx.Client, business_key: str
) -> None:
    wrong = WRONG_VALUES[START_PROPERTIES[name]["type"]]
    start = "/process-definition/key/gateway-waiting/start"

    read = engine_http.post(start, json={"businessKey": business_key, name: wrong})
    # the engine ignores a property that it doesn't read, whatever its value
    ignored = engine_http.post(
        start, json={"businessKey": business_key, f"x-{name}": wrong}
    )

    # only the status: the engine may answer a JSON mapping error in plain text
    assert read.status_code == 400, read.text
    assert ignored.status_code == 200, ignored.text


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        pytest.param(
            "/process-definition/key/no-such-key/start", {}, 404, id="no definition"
        ),
        pytest.param(
            "/process-definition/key/gateway-waiting/start",
            {"variables": {"amount": {"value": 7, "type": "NoSuchType"}}},
            400,
            id="unknown variable type",
        ),
        pytest.param(
            "/process-definition/key/gateway-failing/start", {}, 500, id="failing model"
        ),
    ],
)
def test_the_engines_refusals_fit_the_documented_error_schema(
    path: str,
    body: dict[str, Any],
    status: int,
    served: dict[str, Any],
    engine_http: httpx.Client,
    business_key: str,
) -> None:
    _, documented = find_operation(served, "startByKey")
    refused = documented["responses"][str(status)]["content"]["application/json"]
    error = component(served, refused["schema"])
    operation = schemathesis.openapi.from_dict(served).find_operation_by_id(
        "startByKey"
    )

    answer = engine_http.post(path, json={"businessKey": business_key, **body})

    assert answer.status_code == status, answer.text
    operation.validate_response(answer)
    assert set(answer.json()) <= set(error["properties"])
