"""Schemathesis against the gateway's own OpenAPI document, with the real engine.

Every generated request must get an answer below 500. An answer that the
gateway wrote itself must also be one that the document declares: its status,
content type, headers and body schema. When the run is over it must have
created instances, and every started reservation must name an instance that
the engine holds, with its businessKey; none may be left pending.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings
from schemathesis import checks

from gateway import openapi
from tests.conftest import TEST_DATABASE_PREFIX
from tests.conftest import PostgresServer
from tests.support.proxy import EngineProxy

# `make fuzz` raises the budget; `make test` keeps it fixed and small
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))
schema = schemathesis.openapi.from_dict(orjson.loads(openapi.document("/engine-rest")))
STATS: Counter[str] = Counter()
# what an answer that the gateway wrote itself must conform to
CONFORMANCE = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzz_database(postgres: PostgresServer, database_url: str) -> Iterator[str]:
    name = f"{TEST_DATABASE_PREFIX}{uuid.uuid4().hex[:12]}"
    url = postgres.create_database(name)
    from gateway import schema as migrations

    migrations.upgrade(url)
    yield url
    postgres.drop_database(name)


@pytest.fixture(scope="module")
def fuzz_proxy(engine_url: str) -> Iterator[EngineProxy]:
    """A recording proxy, to tell the gateway's own answers from the engine's."""
    server = EngineProxy(engine_url)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fuzz_gateway(
    fuzz_database: str, fuzz_proxy: EngineProxy, start_gateway: Callable[..., Any]
) -> Any:
    return start_gateway(
        database_url=fuzz_database, engine_url=fuzz_proxy.url, inflight_wait=0.2
    )


def written_by_the_gateway(case: Any, response: Any, proxy: EngineProxy) -> bool:
    """Tell whether the gateway wrote an answer, rather than passing the engine's on."""
    if not case.operation.path.endswith("/start"):
        return True
    # a start it created, replayed or adopted, or a refusal before the engine
    return "idempotency-status" in response.headers or proxy.requests() == []


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_generated_requests_get_the_documented_answers(
    case: Any, fuzz_gateway: Any, fuzz_proxy: EngineProxy
) -> None:
    fuzz_proxy.clear()

    response = case.call(base_url=fuzz_gateway.url, timeout=30)

    STATS["cases"] += 1
    STATS[f"{response.status_code // 100}xx"] += 1
    if response.headers.get("idempotency-status") == ["created"]:
        STATS["created"] += 1
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path}: {response.text}"
    )
    # the engine's refusals pass through as the engine wrote them; a JSON mapping
    # error, for one, may come back as plain text
    if not written_by_the_gateway(case, response, fuzz_proxy):
        STATS["passed through"] += 1
        return
    STATS["validated"] += 1
    case.validate_response(response, checks=CONFORMANCE)


def test_the_run_started_instances_and_left_nothing_unsettled(
    fuzz_database: str, engine_http: httpx.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    with psycopg.connect(fuzz_database) as conn:
        states = dict(
            conn.execute(
                "SELECT state, count(*) FROM reservations GROUP BY 1"
            ).fetchall()
        )
        started = conn.execute(
            "SELECT process_instance_id, business_key FROM reservations"
            " WHERE state = 'started'"
        ).fetchall()
    in_engine = engine_business_keys(engine_http, [row[0] for row in started])
    missing = [row for row in started if in_engine.get(row[0]) != row[1]]
    with capsys.disabled():
        figures = {
            **STATS,
            "5xx": STATS["5xx"],
            "reservations": states,
            "pending": states.get("pending", 0),
            "missing": len(missing),
        }
        print("\nschemathesis:", json.dumps(figures))

    assert STATS["cases"] > 0
    assert STATS["5xx"] == 0
    assert STATS["validated"] > 0
    assert STATS["created"] > 0
    assert states.get("pending", 0) == 0
    assert missing == [], "started reservations whose instance the engine lacks"


def engine_business_keys(
    engine_http: httpx.Client, instance_ids: list[str]
) -> dict[str, str | None]:
    """Return the businessKey of each of these instances that the engine holds."""
    if not instance_ids:
        return {}
    answer = engine_http.post(
        "/history/process-instance", json={"processInstanceIds": instance_ids}
    )
    answer.raise_for_status()
    return {item["id"]: item["businessKey"] for item in answer.json()}
