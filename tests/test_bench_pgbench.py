"""The database limit L runs the gateway's own reserve and record statements."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg
import pytest

from bench import pgbench
from gateway import store


def test_each_pgbench_transaction_leaves_one_started_reservation(
    database_url: str, tmp_path: Path
) -> None:
    tag = f"t{uuid.uuid4().hex[:8]}"

    figures = pgbench.run_pgbench(
        database_url,
        2,
        1,
        cpus=frozenset(os.sched_getaffinity(0)),
        workdir=tmp_path,
        tag=tag,
    )

    assert figures.requests > 0
    assert figures.errors == 0
    assert 0 < figures.p50_ms <= figures.p99_ms <= figures.max_ms
    with psycopg.connect(database_url) as conn:
        states = conn.execute(
            "SELECT state, count(*), count(DISTINCT process_instance_id)"
            " FROM reservations WHERE business_key LIKE %s GROUP BY state",
            (f"order-%-{tag}-%",),
        ).fetchall()
    assert states == [("started", figures.requests, figures.requests)]


def test_a_store_parameter_without_a_value_stops_the_script(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(store, "_RECORD", store._RECORD + " AND %(novel)s")

    with pytest.raises(RuntimeError, match="novel"):
        pgbench.script()
