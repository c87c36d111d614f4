"""Data the benchmark needs before it measures: replay keys and a big table."""

from __future__ import annotations

import concurrent.futures
import logging
import time
import urllib.request
from typing import Any

import psycopg

from bench.load import START_PATH

log = logging.getLogger(__name__)

BULK_METHOD = (
    "INSERT ... SELECT FROM generate_series in batches of 1M rows, with the unique"
    " constraint and indexes dropped before and rebuilt after, as pg_restore does"
)
_BATCH = 1_000_000
_SEED_THREADS = 8

# rows shaped like the ones the gateway records for a started instance; the md5
# keys spread over the index as real order numbers would
_BULK_INSERT = """
INSERT INTO reservations (engine_name, tenant_id, process_definition_key,
    business_key, state, fingerprint, start_path, request_body, attempt,
    process_instance_id, response)
SELECT 'default', '', 'gateway-waiting', key, 'started',
    sha256(body), '/process-definition/key/gateway-waiting/start', body, 1,
    instance, convert_to(
        '{"links":[{"method":"GET","href":"http://engine/engine-rest/'
        || 'process-instance/' || instance || '","rel":"self"}],"id":"'
        || instance || '","definitionId":"gateway-waiting:1:0000","businessKey":"'
        || key || '","caseInstanceId":null,"ended":false,"suspended":false,'
        || '"tenantId":null,"definitionKey":"gateway-waiting"}', 'UTF8')
FROM (
    SELECT key, md5(key)::uuid::text AS instance,
        convert_to('{"businessKey":"' || key || '"}', 'UTF8') AS body
    FROM (
        SELECT 'bulk-' || md5(i::text) || '-' || i AS key
        FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i
    ) AS keys
) AS rows
"""


def bulk_load(url: str, rows: int) -> dict[str, object]:
    """Fill the reservations table with `rows` started rows; return how it went."""
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        rebuild = _drop_indexes(conn)
        for first in range(1, rows + 1, _BATCH):
            last = min(first + _BATCH - 1, rows)
            conn.execute(_BULK_INSERT, {"first": first, "last": last})
            log.info("bulk-loaded %d of %d rows", last, rows)
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
