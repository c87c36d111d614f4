"""Property-based tests of the fingerprint and of the start parser."""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from gateway.errors import GatewayError
from gateway.start_request import StartTarget
from gateway.start_request import fingerprint
from gateway.start_request import parse_start

# `make fuzz` raises the budget; `make test` keeps it small and fixed
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
TARGET = StartTarget("default", process_definition_key="gateway-waiting")
STATS: Counter[str] = Counter()

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
documents = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)
objects = st.dictionaries(st.text(), documents, max_size=6)
# top-level keys that no engine field uses, so any value type is accepted
extras = st.dictionaries(st.text().map(lambda key: f"x-{key}"), documents, max_size=6)
# start-shaped bodies, so that the parser's checks are passed as well as tripped
variables = st.dictionaries(
    st.text(),
    st.fixed_dictionaries(
        {"value": documents},
        optional={"type": st.text() | documents, "valueInfo": documents},
    ),
    max_size=3,
)
starts = st.fixed_dictionaries(
    # some businessKeys around the engine's limit of 255 characters
    {"businessKey": st.text() | st.text(min_size=250, max_size=260) | documents},
    optional={
        "variables": variables | documents,
        "withVariablesInReturn": st.booleans() | documents,
        "startInstructions": st.lists(documents, max_size=2) | documents,
    },
)


def reorder(value: Any) -> Any:
    """Rebuild every object with its keys in reverse order."""
    if isinstance(value, dict):
        return {key: reorder(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [reorder(item) for item in value]
    return value


@settings(max_examples=EXAMPLES, deadline=None)
@given(extras, st.sampled_from([None, 0, 2, 4]))
def test_equivalent_json_has_the_same_fingerprint(
    document: dict[str, Any], indent: int | None
) -> None:
    body = json.dumps({"businessKey": "k", **document}).encode()
    other = json.dumps(
        reorder({"businessKey": "k", **document}), indent=indent
    ).encode()

    first = parse_start(TARGET, body, require_business_key=False)
    second = parse_start(TARGET, other, require_business_key=False)

    STATS["equivalent pairs"] += 1
    assert first.fingerprint == second.fingerprint


@settings(max_examples=EXAMPLES, deadline=None)
@given(objects, objects)
def test_different_content_has_a_different_fingerprint(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    # compare by canonical JSON, which is what "the same content" means here
    same = json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)

    STATS["compared pairs"] += 1
    assert (fingerprint(first) == fingerprint(second)) == same


@settings(
    max_examples=EXAMPLES * 3,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.binary(max_size=512)
    | objects.map(lambda d: json.dumps(d).encode())
    | starts.map(lambda d: json.dumps(d).encode())
)
def test_parser_never_crashes(body: bytes) -> None:
    try:
        start = parse_start(TARGET, body, require_business_key=True)
    except GatewayError as exc:
        STATS["bodies refused"] += 1
        assert exc.status == 400
        return
    STATS["bodies parsed"] += 1
    assert isinstance(start.business_key, str) and 0 < len(start.business_key) <= 255
    assert len(start.fingerprint) == 32


def test_the_fuzzers_ran_and_reached_both_outcomes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with capsys.disabled():
        print("\nhypothesis:", json.dumps(STATS))

    assert STATS["equivalent pairs"] > 0
    assert STATS["compared pairs"] > 0
    # a parser fuzz that never gets past the checks, or never trips one, is blind
    assert STATS["bodies parsed"] > 0
    assert STATS["bodies refused"] > 0
