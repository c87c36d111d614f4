"""Data the benchmark needs before it measures: replay keys and a big table."""

from __future__ import annotations

import concurrent.futures
import hashlib
import logging
import time
import urllib.request
import uuid
from typing import Any

import psycopg

from bench.load import START_PATH

log = logging.getLogger(__name__)

BULK_METHOD = (
    "COPY ... FROM STDIN in binary format, with the unique constraint and"
    " indexes dropped before and rebuilt after, as pg_restore does"
)
_SEED_THREADS = 8
_PROGRESS_EVERY = 1_000_000

_COPY = (
    "COPY reservations (engine_name, tenant_id, process_definition_key,"
    " business_key, state, fingerprint, start_path, request_body, attempt,"
    " process_instance_id, response) FROM STDIN (FORMAT BINARY)"
)
_COPY_TYPES = [
    "text", "text", "text", "text", "text", "bytea", "text", "bytea", "int4",
    "text", "bytea",
]  # fmt: skip
_START_PATH = "/process-definition/key/gateway-waiting/start"


def bulk_load(url: str, rows: int) -> dict[str, object]:
    """Fill the reservations table with `rows` started rows; return how it went."""
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        rebuild = _drop_indexes(conn)
        _copy_rows(conn, rows)
        loaded = time.monotonic() - started

        for statement in rebuild:
            conn.execute(statement)
        indexed = time.monotonic() - started
        # without this the measurement would include autovacuum's catching up
        conn.execute("VACUUM (ANALYZE) reservations")
        conn.execute("CHECKPOINT")
        size = conn.execute(
            "SELECT pg_size_pretty(pg_total_relation_size('reservations')),"
            " (SELECT count(*) FROM reservations)"
        ).fetchone()
    assert size is not None
    return {
        "method": BULK_METHOD,
        "rows": rows,
        "rows_in_table": int(size[1]),
        "table_size": str(size[0]),
        "insert_seconds": round(loaded, 1),
        "with_index_rebuild_seconds": round(indexed, 1),
        "with_vacuum_seconds": round(time.monotonic() - started, 1),
    }


def _copy_rows(conn: psycopg.Connection[Any], rows: int) -> None:
    """Stream `rows` started reservations into the table with one COPY."""
    with conn.cursor() as cursor, cursor.copy(_COPY) as copy:
        copy.set_types(_COPY_TYPES)
        for number in range(1, rows + 1):
            copy.write_row(_started_row(number))
            if number % _PROGRESS_EVERY == 0:
                log.info("bulk-loaded %d of %d rows", number, rows)


def _started_row(number: int) -> tuple[object, ...]:
    """Shape row `number` like one the gateway records for a started instance."""
    # md5-based keys spread over the index as real order numbers would
    digest = hashlib.md5(str(number).encode()).hexdigest()  # noqa: S324 -- not security
    key = f"bulk-{digest}-{number}"
    instance = str(uuid.UUID(digest))
    body = b'{"businessKey":"%s"}' % key.encode()
    response = (
        b'{"links":[{"method":"GET","href":"http://engine/engine-rest/'
        b'process-instance/%(id)s","rel":"self"}],"id":"%(id)s",'
        b'"definitionId":"gateway-waiting:1:0000","businessKey":"%(key)s",'
        b'"caseInstanceId":null,"ended":false,"suspended":false,'
        b'"tenantId":null,"definitionKey":"gateway-waiting"}'
    ) % {b"id": instance.encode(), b"key": key.encode()}
    return (
        "default", "", "gateway-waiting", key, "started",
        hashlib.sha256(body).digest(), _START_PATH, body, 1, instance, response,
    )  # fmt: skip


def _drop_indexes(conn: psycopg.Connection[Any]) -> list[str]:
    """Drop the table's unique constraints and indexes; return how to rebuild them.

    The definitions come from the catalog, so they are rebuilt exactly as the
    migrations made them, whatever the schema's current revision is.
    """
    constraints = conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = 'reservations'::regclass AND contype IN ('p', 'u')"
    ).fetchall()
    indexes = conn.execute(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid)"
        " FROM pg_index WHERE indrelid = 'reservations'::regclass"
        " AND indexrelid NOT IN (SELECT conindid FROM pg_constraint"
        " WHERE conrelid = 'reservations'::regclass)"
    ).fetchall()
    for name, _ in constraints:
        conn.execute(f'ALTER TABLE reservations DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    return [f"{definition}" for _, definition in indexes] + [
        f'ALTER TABLE reservations ADD CONSTRAINT "{name}" {definition}'
        for name, definition in constraints
    ]


def seed_replay_keys(gateway_url: str, prefix: str, count: int) -> None:
    """Start `count` keys through the gateway, so that replays find them."""
    with concurrent.futures.ThreadPoolExecutor(_SEED_THREADS) as pool:
        statuses = list(
            pool.map(lambda i: _start(gateway_url, f"{prefix}-{i}"), range(count))
        )
    created = statuses.count("created")
    if created != count:
        raise RuntimeError(f"seeding created {created} of {count} keys: {statuses}")
    if _start(gateway_url, f"{prefix}-0") != "replayed":
        raise RuntimeError("a seeded key was not replayed")
    log.info("seeded %d replay keys %s-*", count, prefix)


def _start(gateway_url: str, key: str) -> str:
    """Send one start and return its Idempotency-Status."""
    request = urllib.request.Request(  # noqa: S310 -- a loopback URL of ours
        gateway_url + START_PATH,
        data=b'{"businessKey":"' + key.encode() + b'"}',
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        return str(response.headers.get("Idempotency-Status"))
