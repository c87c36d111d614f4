"""A fault campaign: many trials of every fault and kill point, random keys and timing.

`make test` runs a short form (CAMPAIGN_TRIALS, default 2 per fault); `make
campaign` runs the long one (30 per fault). It prints how many trials ran, how
many instances each key ended with, and how many starts were lost.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import fault_replica_env
from tests.support.proxy import EngineProxy
from tests.support.proxy import Fault
from tests.support.replica import Replica
from tests.test_crashes import POINTS
from tests.test_crashes import crash_at
from tests.test_crashes import reconcile

pytestmark = pytest.mark.campaign

TRIALS = int(os.environ.get("CAMPAIGN_TRIALS", "2"))
NETWORK_FAULTS = [
    Fault.DROP_RESPONSE,
    Fault.DELAY_RESPONSE,
    Fault.RESET_BEFORE_FORWARD,
    Fault.BAD_GATEWAY,
    Fault.ERROR_AFTER_FORWARD,
]
MODELS = ["gateway-waiting", "gateway-straight"]
START = "/engine-rest/process-definition/key/{}/start"


@pytest.fixture(scope="module")
def campaign_proxy(engine_url: str) -> Iterator[EngineProxy]:
    server = EngineProxy(engine_url).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def campaign_env(database_url: str, campaign_proxy: EngineProxy) -> dict[str, str]:
    return fault_replica_env(database_url, campaign_proxy.url)


def settle_by_retry(url: str, model: str, business_key: str) -> httpx.Response:
    """Retry a start the way a client should, honouring Retry-After loosely."""
    deadline = time.monotonic() + 60
    while True:
        answer = httpx.post(
            url + START.format(model), json={"businessKey": business_key}, timeout=30
        )
        if answer.status_code == 200 or time.monotonic() > deadline:
            return answer
        # a client backs off before its retry; the lease decides when it works
        time.sleep(min(float(answer.headers.get("Retry-After", "1")), 0.25))


# every trial takes a few seconds, most of them waiting for a lease to expire
@pytest.mark.timeout(120 + TRIALS * 60)
def test_fault_campaign(
    campaign_proxy: EngineProxy,
    campaign_env: dict[str, str],
    database_url: str,
    tmp_path: Path,
    engine_instances: Callable[[str], list[str]],
    wait_for_lease_expiry: Callable[[str], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    rng = random.Random(os.environ.get("CAMPAIGN_SEED") or None)
    survivor = Replica(campaign_env, tmp_path / "survivor.log").start()
    outcomes: dict[str, Counter[int]] = {}
    lost: list[str] = []
    try:
        for fault in NETWORK_FAULTS:
            counts: Counter[int] = Counter()
            for _ in range(TRIALS):
                key = f"campaign-{fault.value}-{uuid.uuid4().hex[:12]}"
                model = rng.choice(MODELS)
                campaign_proxy.clear()
                campaign_proxy.inject(fault, times=1, delay=rng.uniform(1.2, 2.0))
                settle_by_retry(survivor.url, model, key)
                instances = len(engine_instances(key))
                counts[instances] += 1
                if instances == 0:
                    lost.append(key)
            outcomes[fault.value] = counts

        for point in POINTS:
            counts = Counter()
            for trial in range(TRIALS):
                key = f"campaign-kill-{point}-{uuid.uuid4().hex[:12]}"
                victim = Replica(
                    campaign_env, tmp_path / f"victim-{point}-{trial}.log"
                ).start()
                time.sleep(rng.uniform(0, 0.2))  # random timing of the start itself
                try:
                    crash_at(point, victim, campaign_proxy, database_url, key)
                finally:
                    victim.stop()
                wait_for_lease_expiry(key)
                if trial % 2 == 0:
                    settle_by_retry(survivor.url, "gateway-waiting", key)
                else:
                    reconcile(campaign_env)
                instances = len(engine_instances(key))
                counts[instances] += 1
                if instances == 0:
                    lost.append(key)
            outcomes[f"kill-{point}"] = counts
    finally:
        survivor.stop()

    report = {
        "trials_per_fault": TRIALS,
        "trials": sum(sum(c.values()) for c in outcomes.values()),
        "instances_per_key": {name: dict(c) for name, c in outcomes.items()},
        "lost_starts": len(lost),
    }
    with capsys.disabled():
        print("\nfault campaign:", json.dumps(report, indent=2))
    for name, counts in outcomes.items():
        assert set(counts) == {1}, f"{name}: instances per key {dict(counts)}"
    assert lost == []
