"""The engine's yes to a replay's read is kept briefly, per caller, never its no."""

from __future__ import annotations

import pytest

from gateway.read_grants import ReadGrants

ALICE = {"Authorization": "Basic YWxpY2U6YWxpY2Utc2VjcmV0"}
BOB = {"Authorization": "Basic Ym9iOmJvYi1zZWNyZXQ="}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_remembered_grant_allows_the_same_credentials(clock: Clock) -> None:
    grants = ReadGrants(5.0, clock)

    grants.remember("default", "instance-1", ALICE)

    assert grants.allows("default", "instance-1", dict(ALICE))


@pytest.mark.parametrize(
    ("engine_name", "instance_id", "headers"),
    [
        ("default", "instance-1", BOB),
        ("default", "instance-1", {}),
        ("default", "instance-1", {**ALICE, "Cookie": "JSESSIONID=other"}),
        ("default", "instance-2", ALICE),
        ("second", "instance-1", ALICE),
    ],
)
def test_a_grant_allows_nothing_else(
    clock: Clock, engine_name: str, instance_id: str, headers: dict[str, str]
) -> None:
    grants = ReadGrants(5.0, clock)

    grants.remember("default", "instance-1", ALICE)

    assert not grants.allows(engine_name, instance_id, headers)


def test_a_grant_expires_after_its_lifetime(clock: Clock) -> None:
    grants = ReadGrants(5.0, clock)
    grants.remember("default", "instance-1", ALICE)

    clock.now += 4.9
    assert grants.allows("default", "instance-1", ALICE)
    clock.now += 0.2
    assert not grants.allows("default", "instance-1", ALICE)


def test_a_lifetime_of_zero_remembers_nothing(clock: Clock) -> None:
    grants = ReadGrants(0.0, clock)

    grants.remember("default", "instance-1", ALICE)

    assert not grants.allows("default", "instance-1", ALICE)


def test_header_names_match_in_any_case(clock: Clock) -> None:
    grants = ReadGrants(5.0, clock)

    grants.remember("default", "instance-1", {"authorization": ALICE["Authorization"]})

    assert grants.allows("default", "instance-1", ALICE)


def test_no_credentials_are_kept(clock: Clock) -> None:
    grants = ReadGrants(5.0, clock)

    grants.remember("default", "instance-1", ALICE)

    kept = repr(vars(grants))
    assert ALICE["Authorization"] not in kept
    assert "YWxpY2U" not in kept
