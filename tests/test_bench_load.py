"""The benchmark's S and R cases measure real gateway work, with the real wrk.

The instant stub stands in for the engine only here, in the benchmark's own
tests: they check that the load the benchmark reports is starts and replays the
gateway really handled, not errors or answers of the wrong kind.
"""

from __future__ import annotations

import os
import uuid

import pytest

from bench import load
from bench.dataset import seed_replay_keys
from devenv.ports import free_port
from tests.conftest import RunningGateway
from tests.support.reservations import states_and_instances

CPUS = frozenset(os.sched_getaffinity(0))


def test_new_keys_run_records_one_started_reservation_per_start(
    stub_gateway: RunningGateway, database_url: str
) -> None:
    tag = f"t{uuid.uuid4().hex[:8]}"

    figures = load.run_wrk(
        load.new_keys(stub_gateway.url, tag), connections=4, seconds=1, cpus=CPUS
    )

    assert figures.requests > 0
    assert (figures.errors, figures.non_2xx) == (0, 0)
    rows = states_and_instances(database_url, f"order-%-{tag}-%")
    # wrk stops with up to one request per connection still in flight
    assert figures.requests <= len(rows) <= figures.requests + 4
    recorded = [instance for state, instance in rows if state == "started"]
    assert len(recorded) >= figures.requests
    assert len(set(recorded)) == len(recorded)


def test_replay_run_gets_only_replays_and_starts_nothing(
    stub_gateway: RunningGateway, database_url: str
) -> None:
    prefix = f"replay-{uuid.uuid4().hex[:8]}"
    seed_replay_keys(stub_gateway.url, prefix, 20)
    before = states_and_instances(database_url, f"{prefix}-%")

    figures = load.run_wrk(
        load.replays(stub_gateway.url, prefix, 20),
        connections=4,
        seconds=1,
        cpus=CPUS,
    )

    assert figures.requests > 0
    assert (figures.errors, figures.non_2xx) == (0, 0)
    assert sorted(states_and_instances(database_url, f"{prefix}-%")) == sorted(before)


def test_wrk_without_a_server_fails_instead_of_reporting_figures() -> None:
    nobody = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(RuntimeError, match="wrk failed"):
        load.run_wrk(load.new_keys(nobody, "none"), connections=2, seconds=1, cpus=CPUS)
