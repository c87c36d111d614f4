"""Three gateway replicas behind a real nginx survive a duplicate storm."""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from collections import defaultdict
from collections.abc import Callable
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from devenv.nginx import find_nginx
from tests.support.nginx import Nginx
from tests.support.replica import Replica

KEYS = 20
REQUESTS_PER_KEY = 12
START = "/engine-rest/process-definition/key/gateway-waiting/start"


@pytest.fixture
def balanced(
    database_url: str, engine_url: str, tmp_path: Path
) -> Iterator[tuple[Nginx, list[Replica]]]:
    if find_nginx() is None:
        pytest.fail("nginx is not installed; `make test` installs Debian's package")
    env = {
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_ENGINE_URL": engine_url,
        "GATEWAY_WORKERS": "1",
        "GATEWAY_THREADS": "32",
        "GATEWAY_TRUSTED_PROXIES": "1",
    }
    replicas = [Replica(env, tmp_path / f"replica-{i}.log").start() for i in range(3)]
    nginx = Nginx([r.port for r in replicas], tmp_path / "nginx").start()
    yield nginx, replicas
    nginx.stop()
    for replica in replicas:
        replica.stop()


def test_duplicate_storm_through_nginx_makes_one_instance_per_key(
    balanced: tuple[Nginx, list[Replica]],
    engine_instances: Callable[[str], list[str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    nginx, _ = balanced
    run = uuid.uuid4().hex[:8]
    keys = [f"storm-{run}-{i}" for i in range(KEYS)]
    requests = [key for key in keys for _ in range(REQUESTS_PER_KEY)]
    random.shuffle(requests)

    def send(key: str) -> tuple[str, httpx.Response]:
        return key, httpx.post(
            f"{nginx.url}{START}", json={"businessKey": key}, timeout=60
        )

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        answers = list(pool.map(send, requests))

    statuses = Counter(answer.status_code for _, answer in answers)
    instances = {key: engine_instances(key) for key in keys}
    upstreams: dict[str, set[str]] = defaultdict(set)
    # answers that carry anything but their own key's one instance
    misdelivered: list[tuple[str, str, str]] = []
    for key, answer in answers:
        assert answer.status_code in (200, 409), answer.text
        if answer.status_code == 409:
            assert int(answer.headers["Retry-After"]) >= 1
            continue
        started = answer.json()
        if started["businessKey"] != key or [started["id"]] != instances[key]:
            misdelivered.append((key, started["businessKey"], started["id"]))
        upstreams[key].add(answer.headers["X-Served-By"])
    with capsys.disabled():
        print(
            "\nduplicate storm:",
            json.dumps(
                {
                    "requests": len(requests),
                    "answers_by_status": dict(statuses),
                    "instances_per_key": Counter(map(len, instances.values())),
                    "keys_answered_by_several_replicas": sum(
                        len(u) > 1 for u in upstreams.values()
                    ),
                }
            ),
        )

    assert len(requests) >= 200
    assert {len(found) for found in instances.values()} == {1}
    assert misdelivered == []
    # one key's requests landed on different replicas and still agree
    assert sum(len(u) > 1 for u in upstreams.values()) >= KEYS // 2
