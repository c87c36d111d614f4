"""The benchmark's open loop sends new starts at its rate, with the real vegeta.

As in the wrk tests, the instant stub stands in for the engine behind a real
gateway, so that what is checked is the load itself: one new start per request,
at the rate asked for, and a run that falls behind is not called sustained.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from bench import open_loop
from bench.figures import LoadFigures
from devenv.ports import free_port
from tests.conftest import RunningGateway
from tests.support.reservations import states_and_instances

CPUS = frozenset(os.sched_getaffinity(0))


def test_open_loop_starts_a_new_key_with_every_request(
    stub_gateway: RunningGateway, database_url: str, tmp_path: Path
) -> None:
    tag = f"t{uuid.uuid4().hex[:8]}"

    figures = open_loop.run_vegeta(stub_gateway.url, tag, 40, 1, CPUS, workdir=tmp_path)

    assert (figures.requests, figures.errors, figures.non_2xx) == (40, 0, 0)
    assert open_loop.is_sustained(40, 1, figures)
    rows = states_and_instances(database_url, f"order-%-{tag}-%")
    instances = [instance for state, instance in rows if state == "started"]
    assert len(instances) == 40
    assert len(set(instances)) == 40


def test_a_rate_that_gets_no_answers_is_not_sustained(tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"

    figures = open_loop.run_vegeta(nobody, "none", 20, 1, CPUS, workdir=tmp_path)

    assert figures.requests == 0
    assert figures.errors == 20
    assert not open_loop.is_sustained(20, 1, figures)


@pytest.mark.parametrize(
    ("requests", "p99_ms", "non_2xx", "sustained"),
    [
        (100, 40.0, 0, True),
        (97, 40.0, 0, False),
        (100, 400.0, 0, False),
        (100, 40.0, 1, False),
    ],
    ids=["kept-up", "sent-too-few", "queued", "refused-one"],
)
def test_a_step_is_sustained_only_if_every_start_went_out_and_none_queued(
    requests: int, p99_ms: float, non_2xx: int, sustained: bool
) -> None:
    figures = LoadFigures(
        requests=requests,
        seconds=10.0,
        p50_ms=10.0,
        p99_ms=p99_ms,
        mean_ms=12.0,
        max_ms=p99_ms,
        errors=0,
        non_2xx=non_2xx,
        client_cpu_s=0.1,
    )

    assert open_loop.is_sustained(10, 10, figures) is sustained
