"""What the gateway relies on from the engine, checked on every supported engine.

`make test` runs this file against Operaton and against Camunda 7.24 CE.
"""

from __future__ import annotations

import httpx
import pytest

from gateway.config import Settings
from gateway.engine import EngineClient
from gateway.start_request import ReservationIdentity

pytestmark = pytest.mark.contract


def test_start_answers_with_an_id_and_a_self_link(
    engine_http: httpx.Client, engine_url: str, business_key: str
) -> None:
    answer = engine_http.post(
        "/process-definition/key/gateway-waiting/start",
        json={"businessKey": business_key},
    )

    assert answer.status_code == 200
    started = answer.json()
    assert started["businessKey"] == business_key
    assert (
        started["links"][0]["href"] == f"{engine_url}/process-instance/{started['id']}"
    )


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/process-definition/key/no-such-key/start", 404),
        ("/process-definition/key/gateway-failing/start", 500),
    ],
)
def test_refusals_carry_the_engine_error_body(
    engine_http: httpx.Client, business_key: str, path: str, status: int
) -> None:
    answer = engine_http.post(path, json={"businessKey": business_key})

    assert answer.status_code == status
    assert isinstance(answer.json()["type"], str)
    assert isinstance(answer.json()["message"], str)
    count = engine_http.get(
        "/history/process-instance/count",
        params={"processInstanceBusinessKey": business_key},
    )
    assert count.json()["count"] == 0


@pytest.mark.parametrize(
    ("model", "ended"), [("gateway-waiting", False), ("gateway-straight", True)]
)
def test_lookup_finds_running_and_ended_instances(
    engine_http: httpx.Client,
    engine_url: str,
    business_key: str,
    model: str,
    ended: bool,
) -> None:
    started = engine_http.post(
        f"/process-definition/key/{model}/start", json={"businessKey": business_key}
    ).json()
    client = EngineClient(Settings(engine_url=engine_url))

    found = client.find_instances(
        ReservationIdentity("default", None, model, business_key), {}
    )
    other_tenant = client.find_instances(
        ReservationIdentity("default", "tenant-x", model, business_key), {}
    )

    assert [instance.id for instance in found] == [started["id"]]
    assert found[0].ended is ended
    assert other_tenant == []


def test_definition_by_id_names_its_key_and_tenant(engine_http: httpx.Client) -> None:
    definition = engine_http.get("/process-definition/key/gateway-waiting").json()

    by_id = engine_http.get(f"/process-definition/{definition['id']}").json()

    assert by_id["key"] == "gateway-waiting"
    assert by_id["tenantId"] is None


def test_the_gateway_replays_on_this_engine(
    client: httpx.Client, engine_http: httpx.Client, business_key: str
) -> None:
    path = "/process-definition/key/gateway-waiting/start"

    first = client.post(path, json={"businessKey": business_key})
    second = client.post(path, json={"businessKey": business_key})
    failed = client.post(
        "/process-definition/key/gateway-failing/start",
        json={"businessKey": business_key + "-f"},
    )

    assert first.headers["Idempotency-Status"] == "created"
    assert second.headers["Idempotency-Status"] == "replayed"
    assert second.json()["id"] == first.json()["id"]
    assert failed.status_code == 500
    count = engine_http.get(
        "/history/process-instance/count",
        params={"processInstanceBusinessKey": business_key},
    )
    assert count.json()["count"] == 1
