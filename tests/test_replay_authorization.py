"""A replay goes only to a caller whom the engine would let read the instance.

The engine here runs its `auth` profile: HTTP basic authentication, with alice in
tenant-a and bob in tenant-b, each able to start instances of their own tenant.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from devenv.engine import EngineProcess
from devenv.ports import wait_until
from tests.conftest import FAULT_SETTINGS
from tests.support.proxy import EngineProxy
from tests.support.proxy import Fault

START = "/process-definition/key/gateway-waiting/tenant-id/tenant-a/start"
ALICE = ("alice", "alice-secret")
BOB = ("bob", "bob-secret")
ADMIN = ("admin", "admin-secret")


@pytest.fixture(scope="module")
def auth_gateways(
    auth_engine: EngineProcess, start_gateway: Callable[..., Any], gateway_log: Any
) -> dict[str, Any]:
    return {
        "checked": start_gateway(engine_url=auth_engine.url),
        "unchecked": start_gateway(
            engine_url=auth_engine.url, replay_authorization=False
        ),
    }


def count(auth_engine: EngineProcess, business_key: str) -> int:
    answer = httpx.get(
        f"{auth_engine.url}/history/process-instance/count",
        params={"processInstanceBusinessKey": business_key},
        auth=ADMIN,
    )
    return int(answer.json()["count"])


def post(
    gateway: Any, auth: tuple[str, str] | None, body: dict[str, Any]
) -> httpx.Response:
    with httpx.Client(
        base_url=f"{gateway.url}/engine-rest", auth=auth, timeout=30
    ) as http:
        return http.post(START, json=body)


def test_the_owner_gets_the_replay(
    auth_gateways: dict[str, Any], auth_engine: EngineProcess, business_key: str
) -> None:
    body = {"businessKey": business_key, "variables": {"amount": {"value": 42}}}

    first = post(auth_gateways["checked"], ALICE, body)
    again = post(auth_gateways["checked"], ALICE, body)

    assert first.status_code == 200, first.text
    assert again.headers["Idempotency-Status"] == "replayed"
    assert again.json()["id"] == first.json()["id"]
    assert count(auth_engine, business_key) == 1


@pytest.mark.parametrize(
    ("caller", "status"),
    [(BOB, 404), (None, 401), (("alice", "wrong"), 401)],
)
def test_a_caller_who_cannot_read_the_instance_gets_no_replay(
    auth_gateways: dict[str, Any],
    auth_engine: EngineProcess,
    business_key: str,
    caller: tuple[str, str] | None,
    status: int,
) -> None:
    body = {
        "businessKey": business_key,
        "variables": {"secretVariable": {"value": "s3cr3t"}},
    }
    first = post(auth_gateways["checked"], ALICE, body)
    instance = first.json()["id"]

    refused = post(auth_gateways["checked"], caller, body)

    assert refused.status_code == status
    assert refused.json()["type"] == "ReplayRefused"
    # nothing of the instance leaks: not its id, definition or variables
    for secret in (instance, first.json()["definitionId"], "s3cr3t", "links"):
        assert secret not in refused.text
    assert "Idempotency-Status" not in refused.headers
    if status == 401:
        assert refused.headers["WWW-Authenticate"].startswith("Basic")
    assert count(auth_engine, business_key) == 1


def test_without_the_check_the_replay_would_leak(
    auth_gateways: dict[str, Any], business_key: str
) -> None:
    body = {"businessKey": business_key}
    first = post(auth_gateways["checked"], ALICE, body)

    leaked = post(auth_gateways["unchecked"], BOB, body)

    # this is what the check prevents: bob learns alice's instance
    assert leaked.status_code == 200
    assert leaked.json()["id"] == first.json()["id"]


def test_credentials_are_forwarded_to_the_engine(
    auth_gateways: dict[str, Any], auth_engine: EngineProcess, business_key: str
) -> None:
    anonymous = post(auth_gateways["checked"], None, {"businessKey": business_key})
    foreign = post(auth_gateways["checked"], BOB, {"businessKey": business_key})

    # without credentials the engine refuses the start itself, and bob can't
    # see tenant-a's definition
    assert anonymous.status_code == 401
    assert foreign.status_code == 404
    assert count(auth_engine, business_key) == 0


def test_a_granted_read_is_reused_only_by_the_same_caller(
    auth_engine: EngineProcess,
    start_gateway: Callable[..., Any],
    business_key: str,
) -> None:
    proxy = EngineProxy(auth_engine.url).start()
    try:
        gateway = start_gateway(engine_url=proxy.url)
        body = {"businessKey": business_key}
        instance = post(gateway, ALICE, body).json()["id"]

        replays = [post(gateway, ALICE, body) for _ in range(3)]
        refused = post(gateway, BOB, body)
        reads = [r for r in proxy.requests() if r.path.endswith(f"/{instance}")]
    finally:
        proxy.stop()

    assert [r.headers["Idempotency-Status"] for r in replays] == ["replayed"] * 3
    # alice's first replay asked the engine; her next two used its answer
    assert [r.headers["Authorization"] for r in reads].count(_basic(ALICE)) == 1
    # bob's credentials are asked again, and refused
    assert refused.status_code == 404
    assert instance not in refused.text
    assert count(auth_engine, business_key) == 1


def _basic(credentials: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(":".join(credentials).encode()).decode()


def test_a_caller_who_cannot_see_the_instance_cannot_release_its_reservation(
    auth_engine: EngineProcess,
    start_gateway: Callable[..., Any],
    business_key: str,
    reservations: Callable[[str], list[dict[str, Any]]],
    wait_for_lease_expiry: Callable[[str], None],
) -> None:
    proxy = EngineProxy(auth_engine.url).start()
    try:
        gateway = start_gateway(engine_url=proxy.url, **FAULT_SETTINGS)
        body = {"businessKey": business_key}
        # alice's start reaches the engine only after the gateway gave up on it
        proxy.inject(Fault.HOLD, times=1)
        timed_out = post(gateway, ALICE, body)
        proxy.release_held()
        assert proxy.forwarded.wait(30)
        wait_until(lambda: count(auth_engine, business_key) == 1, 30, "the instance")

        # bob's lookup can't see alice's instance, and the engine refuses his start
        wait_for_lease_expiry(business_key)
        foreign = post(gateway, BOB, body)
        kept = reservations(business_key)

        wait_for_lease_expiry(business_key)
        adopted = post(gateway, ALICE, body)
    finally:
        proxy.stop()

    assert timed_out.status_code == 504
    assert foreign.status_code == 404
    assert [(row["state"], row["attempt"]) for row in kept] == [("pending", 2)]
    assert adopted.status_code == 200, adopted.text
    assert adopted.headers["Idempotency-Status"] == "adopted"
    assert count(auth_engine, business_key) == 1


def test_a_replay_whose_read_fails_in_the_engine_is_unavailable_not_refused(
    auth_engine: EngineProcess,
    start_gateway: Callable[..., Any],
    business_key: str,
) -> None:
    proxy = EngineProxy(auth_engine.url).start()
    try:
        gateway = start_gateway(engine_url=proxy.url)
        body = {"businessKey": business_key}
        created = post(gateway, ALICE, body)
        # the engine fails the read that would authorize the replay
        proxy.inject(Fault.BAD_GATEWAY, matches="/process-instance/", times=1)
        failed = post(gateway, ALICE, body)
        replayed = post(gateway, ALICE, body)
    finally:
        proxy.stop()

    assert created.status_code == 200, created.text
    # a failed read says nothing about alice: she is told to retry, not refused
    assert failed.status_code == 503, failed.text
    assert failed.json()["type"] == "EngineUnavailable"
    assert int(failed.headers["Retry-After"]) >= 1
    assert created.json()["id"] not in failed.text
    assert replayed.status_code == 200
    assert replayed.headers["Idempotency-Status"] == "replayed"
    assert replayed.json()["id"] == created.json()["id"]
    assert count(auth_engine, business_key) == 1


def test_other_content_names_the_instance_only_to_a_caller_who_can_read_it(
    auth_gateways: dict[str, Any], auth_engine: EngineProcess, business_key: str
) -> None:
    first = post(auth_gateways["checked"], ALICE, {"businessKey": business_key})
    instance = first.json()["id"]
    other = {"businessKey": business_key, "variables": {"n": {"value": 1}}}

    to_bob = post(auth_gateways["checked"], BOB, other)
    to_alice = post(auth_gateways["checked"], ALICE, other)

    assert first.status_code == 200, first.text
    assert to_bob.status_code == 422
    assert to_bob.json()["type"] == "IdempotencyKeyReused"
    assert instance not in to_bob.text
    assert to_alice.status_code == 422
    assert to_alice.json()["processInstanceId"] == instance
    assert count(auth_engine, business_key) == 1


def test_a_start_without_credentials_gets_the_engines_challenge(
    auth_gateways: dict[str, Any], auth_engine: EngineProcess, business_key: str
) -> None:
    refused = post(auth_gateways["checked"], None, {"businessKey": business_key})

    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Basic")
    assert count(auth_engine, business_key) == 0
