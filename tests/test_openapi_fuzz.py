"""Schemathesis against the gateway's own OpenAPI document, with the real engine.

Every generated request must get an answer below 500, and when the run is over
no reservation may be left pending or half-written.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import orjson
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings

from gateway import openapi
from tests.conftest import TEST_DATABASE_PREFIX
from tests.conftest import PostgresServer

# `make fuzz` raises the budget; `make test` keeps it fixed and small
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))
schema = schemathesis.openapi.from_dict(orjson.loads(openapi.document("/engine-rest")))
STATS: Counter[str] = Counter()


@pytest.fixture(scope="module")
def fuzz_database(postgres: PostgresServer, database_url: str) -> Iterator[str]:
    name = f"{TEST_DATABASE_PREFIX}{uuid.uuid4().hex[:12]}"
    url = postgres.create_database(name)
    from gateway import schema as migrations

    migrations.upgrade(url)
    yield url
    postgres.drop_database(name)


@pytest.fixture(scope="module")
def fuzz_gateway(fuzz_database: str, start_gateway: Callable[..., Any]) -> Any:
    return start_gateway(database_url=fuzz_database, inflight_wait=0.2)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_generated_requests_get_no_server_error(case: Any, fuzz_gateway: Any) -> None:
    response = case.call(base_url=fuzz_gateway.url, timeout=30)

    STATS["cases"] += 1
    STATS[f"{response.status_code // 100}xx"] += 1
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path}: {response.text}"
    )


def test_nothing_is_left_pending_or_half_written(
    fuzz_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with psycopg.connect(fuzz_database) as conn:
        states = dict(
            conn.execute(
                "SELECT state, count(*) FROM reservations GROUP BY 1"
            ).fetchall()
        )
        broken = conn.execute(
            "SELECT count(*) FROM reservations WHERE state = 'started'"
            " AND (process_instance_id IS NULL OR response IS NULL)"
        ).fetchone()
    with capsys.disabled():
        print("\nschemathesis:", json.dumps({**STATS, "reservations": states}))

    assert STATS["cases"] > 0
    assert STATS["5xx"] == 0
    assert states.get("pending", 0) == 0
    assert broken == (0,)
