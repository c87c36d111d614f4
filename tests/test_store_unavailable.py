"""Without a committed reservation nothing is forwarded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import PostgresServer
from tests.support.proxy import EngineProxy


@pytest.fixture
def stopped_postgres(postgres: PostgresServer) -> Iterator[None]:
    if postgres.local is None:
        pytest.skip("stopping the server is done on the local PostgreSQL only")
    postgres.local.stop()
    yield
    postgres.local.start()


def test_start_with_postgres_stopped_gets_503_and_reaches_no_engine(
    proxied_gateway: Any,
    proxy: EngineProxy,
    business_key: str,
    postgres: PostgresServer,
    stopped_postgres: None,
) -> None:
    with proxied_gateway.client() as http:
        answer = http.post(
            "/process-definition/key/gateway-waiting/start",
            json={"businessKey": business_key},
        )
        reached_engine = proxy.requests()
        ready = http.get(f"{proxied_gateway.url}/readyz")

    assert answer.status_code == 503
    assert answer.json()["type"] == "ReservationStoreUnavailable"
    assert int(answer.headers["Retry-After"]) >= 1
    assert reached_engine == []
    assert ready.status_code == 503
    assert ready.json()["reason"] == "the database can't be reached"


def test_starts_recover_once_postgres_is_back(
    proxied_gateway: Any,
    business_key: str,
    postgres: PostgresServer,
    count_instances: Any,
) -> None:
    if postgres.local is None:
        pytest.skip("stopping the server is done on the local PostgreSQL only")
    path = "/process-definition/key/gateway-waiting/start"
    with proxied_gateway.client() as http:
        postgres.local.stop()
        try:
            down = http.post(path, json={"businessKey": business_key})
        finally:
            postgres.local.start()
        up = http.post(path, json={"businessKey": business_key})

    assert down.status_code == 503
    assert up.status_code == 200, up.text
    assert up.headers["Idempotency-Status"] == "created"
    assert count_instances(business_key) == 1
