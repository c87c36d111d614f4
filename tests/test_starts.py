"""Idempotent starts against the real engine; each test counts its instances."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

WAITING = "gateway-waiting"
STRAIGHT = "gateway-straight"
FAILING = "gateway-failing"


def start(
    client: httpx.Client, key: str, body: dict[str, Any], tenant: str | None = None
) -> httpx.Response:
    path = f"/process-definition/key/{key}/start"
    if tenant is not None:
        path = f"/process-definition/key/{key}/tenant-id/{tenant}/start"
    return client.post(path, json=body)


def deploy(client: httpx.Client, key: str, tenant: str | None = None) -> dict[str, Any]:
    """Deploy a waiting model under a new key through the given client."""
    model = f"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" targetNamespace="test">
  <process id="{key}" isExecutable="true">
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="task"/>
    <userTask id="task"/>
    <sequenceFlow id="f2" sourceRef="task" targetRef="end"/>
    <endEvent id="end"/>
  </process>
</definitions>"""
    data = {"deployment-name": key, "deploy-changed-only": "false"}
    if tenant is not None:
        data["tenant-id"] = tenant
    answer = client.post(
        "/deployment/create",
        data=data,
        files={
            "model.bpmn": (f"{key}.bpmn", model.encode(), "application/octet-stream")
        },
    )
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


def assert_engine_answer(
    passed: httpx.Response, direct: httpx.Response, status: int
) -> None:
    """Check that the gateway passed on the engine's own error, not one of its own."""
    assert (passed.status_code, direct.status_code) == (status, status)
    engine_error = direct.json()
    assert (passed.json()["type"], passed.json()["message"]) == (
        engine_error["type"],
        engine_error["message"],
    )


def test_same_start_twice_gets_the_same_instance(
    client: httpx.Client, business_key: str, count_instances: Callable[[str], int]
) -> None:
    body = {
        "businessKey": business_key,
        "variables": {"amount": {"value": 7, "type": "Integer"}},
    }

    first = start(client, WAITING, body)
    second = start(client, WAITING, body)

    assert first.status_code == 200, first.text
    assert first.headers["Idempotency-Status"] == "created"
    assert second.status_code == 200, second.text
    assert second.headers["Idempotency-Status"] == "replayed"
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]
    assert second.json() == first.json()
    assert count_instances(business_key) == 1


def test_answers_point_links_at_the_gateway(
    client: httpx.Client, gateway: Any, business_key: str
) -> None:
    first = start(client, WAITING, {"businessKey": business_key})
    replay = start(client, WAITING, {"businessKey": business_key})

    for answer in (first, replay):
        hrefs = [link["href"] for link in answer.json()["links"]]
        assert hrefs == [
            f"{gateway.url}/engine-rest/process-instance/{first.json()['id']}"
        ]


def test_a_variable_that_holds_the_engine_url_comes_back_unchanged(
    client: httpx.Client, gateway: Any, business_key: str, engine_url: str
) -> None:
    callback = {"value": f"{engine_url}/task/1", "type": "String"}
    body = {
        "businessKey": business_key,
        "variables": {"callback": callback},
        "withVariablesInReturn": True,
    }

    first = start(client, WAITING, body)
    replay = start(client, WAITING, body)

    for answer in (first, replay):
        assert answer.status_code == 200, answer.text
        assert answer.json()["variables"]["callback"]["value"] == callback["value"]
        assert answer.json()["links"][0]["href"].startswith(gateway.url)


def test_a_new_version_of_the_definition_shares_the_reservation(
    client: httpx.Client, business_key: str, count_instances: Callable[[str], int]
) -> None:
    key = f"versioned-{uuid.uuid4().hex[:8]}"
    deploy(client, key)
    first = start(client, key, {"businessKey": business_key})
    [newer] = deploy(client, key)["deployedProcessDefinitions"].values()

    again = start(client, key, {"businessKey": business_key})
    by_id = client.post(
        f"/process-definition/{newer['id']}/start", json={"businessKey": business_key}
    )

    assert newer["version"] == 2
    assert newer["id"] != first.json()["definitionId"]
    for answer in (again, by_id):
        assert answer.headers["Idempotency-Status"] == "replayed"
        assert answer.json()["id"] == first.json()["id"]
    assert count_instances(business_key) == 1


def test_fifty_concurrent_starts_make_one_instance(
    gateway: Any, business_key: str, count_instances: Callable[[str], int]
) -> None:
    body = {"businessKey": business_key}
    barrier = threading.Barrier(50)

    def send(_: int) -> httpx.Response:
        with gateway.client() as http:
            barrier.wait()
            return start(http, WAITING, body)

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(send, range(50)))

    ids = {a.json()["id"] for a in answers if a.status_code == 200}
    assert len(ids) == 1
    for answer in answers:
        assert answer.status_code in (200, 409), answer.text
        if answer.status_code == 409:
            assert int(answer.headers["Retry-After"]) >= 1
    statuses = [
        a.headers.get("Idempotency-Status") for a in answers if a.status_code == 200
    ]
    assert statuses.count("created") == 1
    assert count_instances(business_key) == 1


def test_replay_with_other_variables_is_rejected(
    client: httpx.Client, business_key: str, count_instances: Callable[[str], int]
) -> None:
    first = start(
        client, WAITING, {"businessKey": business_key, "variables": {"a": {"value": 1}}}
    )
    other = start(
        client, WAITING, {"businessKey": business_key, "variables": {"a": {"value": 2}}}
    )

    assert first.status_code == 200
    assert other.status_code == 422
    error = other.json()
    assert error["type"] == "IdempotencyKeyReused"
    assert error["processInstanceId"] == first.json()["id"]
    assert business_key in error["message"]
    assert count_instances(business_key) == 1


def test_reordered_json_is_the_same_start(
    client: httpx.Client, business_key: str, count_instances: Callable[[str], int]
) -> None:
    bk = business_key
    variable = '{"a": {"value": 1, "type": "Long"}}'
    spaced = f'{{"businessKey": "{bk}", "variables": {variable}}}'
    packed = f'{{"variables":{{"a":{{"type":"Long","value":1}}}},"businessKey":"{bk}"}}'
    path = f"/process-definition/key/{WAITING}/start"
    json_type = {"Content-Type": "application/json"}

    first = client.post(path, content=spaced, headers=json_type)
    second = client.post(path, content=packed, headers=json_type)

    assert second.headers["Idempotency-Status"] == "replayed"
    assert second.json()["id"] == first.json()["id"]
    assert count_instances(business_key) == 1


def test_unknown_key_passes_404_through_and_releases(
    client: httpx.Client,
    engine_http: httpx.Client,
    business_key: str,
    count_instances: Callable[[str], int],
    reservations: Callable[[str], list[dict[str, Any]]],
) -> None:
    key = f"late-{uuid.uuid4().hex[:8]}"

    refused = start(client, key, {"businessKey": business_key})
    direct = start(engine_http, key, {"businessKey": business_key})

    assert_engine_answer(refused, direct, 404)
    assert key in refused.json()["message"]
    assert "Idempotency-Status" not in refused.headers
    assert reservations(business_key) == []

    deploy(client, key)
    started = start(client, key, {"businessKey": business_key})

    assert started.status_code == 200, started.text
    assert started.headers["Idempotency-Status"] == "created"
    assert count_instances(business_key) == 1


def test_failing_delegate_passes_500_through_and_releases(
    client: httpx.Client,
    engine_http: httpx.Client,
    business_key: str,
    count_instances: Callable[[str], int],
    reservations: Callable[[str], list[dict[str, Any]]],
) -> None:
    failed = start(client, FAILING, {"businessKey": business_key})
    direct = start(engine_http, FAILING, {"businessKey": business_key})

    assert_engine_answer(failed, direct, 500)
    assert "deliberate failure in FailingDelegate" in failed.json()["message"]
    assert reservations(business_key) == []
    assert count_instances(business_key) == 0

    # the key is free again, so another definition can use it
    started = start(client, WAITING, {"businessKey": business_key})
    assert started.status_code == 200
    assert count_instances(business_key) == 1


def test_tenant_and_no_tenant_are_different_reservations(
    client: httpx.Client,
    business_key: str,
    count_instances: Callable[[str], int],
    reservations: Callable[[str], list[dict[str, Any]]],
) -> None:
    key = f"tenanted-{uuid.uuid4().hex[:8]}"
    deploy(client, key)
    deploy(client, key, tenant="tenant-a")
    body = {"businessKey": business_key}

    plain = start(client, key, body)
    tenanted = start(client, key, body, tenant="tenant-a")

    assert plain.status_code == 200, plain.text
    assert tenanted.status_code == 200, tenanted.text
    assert tenanted.headers["Idempotency-Status"] == "created"
    assert plain.json()["id"] != tenanted.json()["id"]
    assert tenanted.json()["tenantId"] == "tenant-a"
    assert sorted(row["tenant_id"] for row in reservations(business_key)) == [
        "",
        "tenant-a",
    ]
    assert count_instances(business_key) == 2


def test_named_engine_paths(
    client: httpx.Client,
    business_key: str,
    count_instances: Callable[[str], int],
    reservations: Callable[[str], list[dict[str, Any]]],
) -> None:
    body = {"businessKey": business_key}

    plain = start(client, WAITING, body)
    named_default = client.post(
        f"/engine/default/process-definition/key/{WAITING}/start", json=body
    )
    other_engine = client.post(
        f"/engine/other/process-definition/key/{WAITING}/start", json=body
    )

    # a path without an engine name addresses the engine called default
    assert named_default.headers["Idempotency-Status"] == "replayed"
    assert named_default.json()["id"] == plain.json()["id"]
    # the test engine has no engine of that name, so nothing is reserved for it
    assert other_engine.status_code == 404
    assert other_engine.json()["type"] == "NotFound"
    assert [row["engine_name"] for row in reservations(business_key)] == ["default"]
    assert count_instances(business_key) == 1


def test_two_engine_names_are_two_reservations(
    client: httpx.Client,
    engine_http: httpx.Client,
    business_key: str,
    reservations: Callable[[str], list[dict[str, Any]]],
) -> None:
    body = {"businessKey": business_key}

    on_default = start(client, WAITING, body)
    on_second = client.post(
        f"/engine/second/process-definition/key/{WAITING}/start", json=body
    )
    replay = client.post(
        f"/engine/second/process-definition/key/{WAITING}/start", json=body
    )

    assert on_default.headers["Idempotency-Status"] == "created"
    # the test engine hosts a second process engine, with its own database
    assert on_second.status_code == 200, on_second.text
    assert on_second.headers["Idempotency-Status"] == "created"
    assert replay.headers["Idempotency-Status"] == "replayed"
    assert replay.json()["id"] == on_second.json()["id"] != on_default.json()["id"]
    assert sorted(row["engine_name"] for row in reservations(business_key)) == [
        "default",
        "second",
    ]
    second = engine_http.get(
        "/engine/second/history/process-instance/count",
        params={"processInstanceBusinessKey": business_key},
    )
    assert second.json()["count"] == 1


def test_start_by_id_shares_the_reservation_of_its_key(
    client: httpx.Client,
    engine_http: httpx.Client,
    business_key: str,
    count_instances: Callable[[str], int],
) -> None:
    definition = engine_http.get(f"/process-definition/key/{WAITING}").json()
    body = {"businessKey": business_key}

    by_id = client.post(f"/process-definition/{definition['id']}/start", json=body)
    by_key = start(client, WAITING, body)

    assert by_id.status_code == 200, by_id.text
    assert by_id.headers["Idempotency-Status"] == "created"
    assert by_key.headers["Idempotency-Status"] == "replayed"
    assert by_key.json()["id"] == by_id.json()["id"]
    assert count_instances(business_key) == 1


def test_start_by_unknown_id_passes_404_through(
    client: httpx.Client, business_key: str
) -> None:
    answer = client.post(
        "/process-definition/no-such-definition:1:1/start",
        json={"businessKey": business_key},
    )

    assert answer.status_code == 404
    assert answer.json()["type"]


@pytest.mark.parametrize("model", [WAITING, STRAIGHT])
def test_replay_works_for_running_and_ended_instances(
    client: httpx.Client,
    business_key: str,
    model: str,
    count_instances: Callable[[str], int],
) -> None:
    first = start(client, model, {"businessKey": business_key})
    replay = start(client, model, {"businessKey": business_key})

    assert replay.json()["id"] == first.json()["id"]
    assert count_instances(business_key) == 1
