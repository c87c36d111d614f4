"""The alembic migrations: concurrent runs, a round trip, and the schema they build."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
from alembic import command

from devenv.ports import wait_until
from gateway.schema import MIGRATION_LOCK_ID
from gateway.schema import alembic_config
from gateway.schema import head_revision
from tests.support.replica import Replica

ROOT = Path(__file__).resolve().parent.parent
GATEWAY = str(Path(sys.executable).parent / "gateway")
ALEMBIC = str(Path(sys.executable).parent / "alembic")


def environment(url: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "GATEWAY_DATABASE_URL": url}


def run(command: list[str], url: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        command,
        env=environment(url),
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )


def revision(url: str) -> str | None:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return None if row is None else str(row[0])


def spawn(command: list[str], url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        env=environment(url),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def migrations_waiting_for_the_lock(conn: psycopg.Connection[Any]) -> int:
    """Count the sessions of this database that wait for the migration lock."""
    # a bigint advisory lock shows its high half as classid, its low half as objid
    row = conn.execute(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
        " WHERE l.locktype = 'advisory' AND NOT l.granted AND l.objsubid = 1"
        " AND d.datname = current_database()"
        " AND (l.classid::bigint << 32) | l.objid::bigint = %s",
        (MIGRATION_LOCK_ID,),
    ).fetchone()
    return 0 if row is None else int(row[0])


def test_three_concurrent_migrates_all_succeed(empty_database: str) -> None:
    with psycopg.connect(empty_database, autocommit=True) as holder:
        # holding the migration lock makes all three runs overlap for certain
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
        runs = [spawn([GATEWAY, "migrate"], empty_database) for _ in range(3)]
        wait_until(
            lambda: migrations_waiting_for_the_lock(holder) == 3,
            60,
            "three migrations waiting for the migration lock",
        )
        holder.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))
        errors = [run.communicate(timeout=120)[1][-500:] for run in runs]

    assert [run.returncode for run in runs] == [0, 0, 0], errors
    with psycopg.connect(empty_database) as conn:
        versions = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    assert versions == [(head_revision(),)]


def test_downgrade_to_base_and_upgrade_again(empty_database: str) -> None:
    assert run([ALEMBIC, "upgrade", "head"], empty_database).returncode == 0
    down = run([ALEMBIC, "downgrade", "base"], empty_database)
    assert down.returncode == 0, down.stderr
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("SELECT to_regclass('reservations')").fetchone() == (None,)
    up = run([ALEMBIC, "upgrade", "head"], empty_database)

    assert up.returncode == 0, up.stderr
    assert revision(empty_database) == head_revision()


def test_schema_has_the_reservation_identity_and_state(empty_database: str) -> None:
    assert run([GATEWAY, "migrate"], empty_database).returncode == 0

    with psycopg.connect(empty_database) as conn:
        columns = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_name = 'reservations'"
            ).fetchall()
        )
        unique = conn.execute(
            "SELECT array_agg(a.attname ORDER BY k.ord) FROM pg_constraint c"
            " CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)"
            " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum"
            " WHERE c.conname = 'reservations_identity_key' AND c.contype = 'u'"
        ).fetchone()
        checks = {
            row[0]
            for row in conn.execute(
                "SELECT conname FROM pg_constraint"
                " WHERE conrelid = 'reservations'::regclass AND contype = 'c'"
            ).fetchall()
        }
        indexes = {
            row[0]
            for row in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'reservations'"
            ).fetchall()
        }

    assert columns == {
        "caller": "text",
        "engine_name": "text",
        "tenant_id": "text",
        "process_definition_key": "text",
        "business_key": "text",
        "state": "text",
        "fingerprint": "bytea",
        "start_path": "text",
        "request_body": "bytea",
        "attempt": "integer",
        "lease_expires_at": "timestamp with time zone",
        "process_instance_id": "text",
        "response": "bytea",
        "created_at": "timestamp with time zone",
        "updated_at": "timestamp with time zone",
        "reservation_id": "uuid",
    }
    assert unique == (
        [
            "caller",
            "engine_name",
            "tenant_id",
            "process_definition_key",
            "business_key",
        ],
    )
    assert checks >= {
        "reservations_state_check",
        "reservations_started_check",
        "reservations_pending_check",
        "reservations_attempt_check",
    }
    assert {
        "reservations_pending_lease_idx",
        "reservations_created_at_idx",
        "reservations_caller_business_key_idx",
    } <= indexes


def test_readyz_answers_503_while_the_schema_is_behind_head(
    empty_database: str, start_gateway: Callable[..., Any]
) -> None:
    gateway = start_gateway(database_url=empty_database)

    with gateway.client() as http:
        behind = http.get(f"{gateway.url}/readyz")
        run([GATEWAY, "migrate"], empty_database)
        ready = http.get(f"{gateway.url}/readyz")

    assert behind.status_code == 503
    assert "not at head" in behind.json()["reason"]
    assert ready.status_code == 200
    assert ready.json()["schema"] == {
        "head": head_revision(),
        "current": head_revision(),
    }


def test_a_served_replica_is_not_ready_until_its_database_reaches_head(
    empty_database: str, engine_url: str, tmp_path: Path
) -> None:
    # a database one migration behind, as during a rollout before `migrate`
    command.upgrade(alembic_config(empty_database), "0002")
    env = {
        "GATEWAY_DATABASE_URL": empty_database,
        "GATEWAY_ENGINE_URL": engine_url,
        "GATEWAY_WORKERS": "1",
    }
    replica = Replica(env, tmp_path / "replica.log").start()
    try:
        behind = httpx.get(f"{replica.url}/readyz", timeout=10)
        assert run([GATEWAY, "migrate"], empty_database).returncode == 0
        ready = httpx.get(f"{replica.url}/readyz", timeout=10)
    finally:
        replica.stop()

    assert behind.status_code == 503
    assert behind.json()["schema"] == {"head": head_revision(), "current": "0002"}
    assert ready.status_code == 200
    assert ready.json()["schema"]["current"] == head_revision()


def test_rows_from_before_reservation_ids_survive_0004_and_its_downgrade(
    empty_database: str,
) -> None:
    command.upgrade(alembic_config(empty_database), "0003")
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO reservations (engine_name, process_definition_key,"
            " business_key, state, fingerprint, start_path, request_body,"
            " lease_expires_at) VALUES ('default', 'k', 'before', 'pending',"
            " '\\x00', '/p', '\\x00', now())"
        )

    command.upgrade(alembic_config(empty_database), "head")
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO reservations (engine_name, process_definition_key,"
            " business_key, state, fingerprint, start_path, request_body,"
            " lease_expires_at) VALUES ('default', 'k', 'after', 'pending',"
            " '\\x00', '/p', '\\x00', now())"
        )
        ids = dict(
            conn.execute(
                "SELECT business_key, reservation_id IS NOT NULL FROM reservations"
            ).fetchall()
        )
    command.downgrade(alembic_config(empty_database), "0003")

    assert ids == {"before": False, "after": True}
    assert revision(empty_database) == "0003"
    with psycopg.connect(empty_database) as conn:
        count = conn.execute("SELECT count(*) FROM reservations").fetchone()
    assert count == (2,)
