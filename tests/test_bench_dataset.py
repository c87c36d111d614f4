"""The benchmark's big table: bulk-loaded rows are rows the gateway would record."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from bench import dataset
from bench.stub import EngineStub
from gateway.app import create_app
from gateway.config import Settings
from tests.support.servers import ThreadedServer

ROWS = 2_000
START = "/engine-rest/process-definition/key/gateway-waiting/start"


@pytest.fixture
def gateway_url(own_database: str, stub: EngineStub) -> Iterator[str]:
    settings = dataclasses.replace(
        Settings(database_url=own_database, engine_url=stub.url),
        replay_authorization=False,
    )
    server = ThreadedServer(create_app(settings)).start()
    yield server.url
    server.stop()
    server.app.extensions["gateway"].store.close()


def keys_and_indexes(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'reservations'::regclass"
            " UNION ALL SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid)"
            " FROM pg_index WHERE indrelid = 'reservations'::regclass ORDER BY 1, 2"
        ).fetchall()


def test_bulk_load_fills_the_table_and_rebuilds_every_key_and_index(
    own_database: str,
) -> None:
    before = keys_and_indexes(own_database)

    report = dataset.bulk_load(own_database, ROWS)

    assert report["rows_in_table"] == ROWS
    assert keys_and_indexes(own_database) == before


def test_a_bulk_loaded_row_is_replayed_like_a_recorded_start(
    own_database: str, gateway_url: str
) -> None:
    dataset.bulk_load(own_database, ROWS)
    with psycopg.connect(own_database) as conn:
        row = conn.execute(
            "SELECT business_key, process_instance_id FROM reservations LIMIT 1"
        ).fetchone()
    assert row is not None
    business_key, instance_id = row

    answer = httpx.post(f"{gateway_url}{START}", json={"businessKey": business_key})
    duplicate = httpx.post(
        f"{gateway_url}{START}", json={"businessKey": business_key, "x": 1}
    )

    assert answer.status_code == 200
    assert answer.headers["Idempotency-Status"] == "replayed"
    assert answer.json()["id"] == instance_id
    # the unique constraint is back: a different start of the key is refused
    assert duplicate.status_code == 422
