"""The database limit: pgbench running the gateway's own reserve and record SQL.

The script is made from the statements in gateway/store.py at run time, so it
can't drift from what the gateway sends. Each transaction reserves a new key and
records its instance, as one new start through the gateway does; like the
gateway, every statement is its own (autocommitted) transaction.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
from pathlib import Path

from bench.figures import LoadFigures
from bench.figures import children_cpu_seconds
from bench.pinning import launched_on
from devenv.postgres import find_bindir
from gateway import store

log = logging.getLogger(__name__)

# a key per transaction, unique from the run's tag, pgbench's client id and a
# per-client counter; the random leading part spreads keys over the index
_KEY = "('order-' || :r || '-' || :tag || '-' || :client_id || '-' || :n)"
_BODY = f"""convert_to('{{"businessKey":"' || {_KEY} || '"}}', 'UTF8')"""
# the engine's answer is about this long; its content does not matter here.
# json.dumps puts a space after each colon: pgbench would take ":null" for a
# variable named null
_RESPONSE_DOCUMENT = json.dumps(
    {
        "links": [
            {
                "method": "GET",
                "href": "http://engine/engine-rest/process-instance/@ID@",
                "rel": "self",
            }
        ],
        "id": "@ID@",
        "definitionId": "gateway-waiting-1-00000000-0000-0000-0000-000000000000",
        "businessKey": None,
        "caseInstanceId": None,
        "ended": False,
        "suspended": False,
        "tenantId": None,
        "definitionKey": "gateway-waiting",
    }
)
_RESPONSE = "convert_to('{}', 'UTF8')".format(
    _RESPONSE_DOCUMENT.replace("@ID@", "' || gen_random_uuid() || '")
)
# the reserve's row lands in pgbench variables of this prefix, for the record
_RESERVED = "reserved_"
# the values the gateway binds as parameters are pgbench variables, which the
# prepared protocol binds as parameters too
VARIABLES = {
    "engine_name": "default",
    "process_definition_key": "gateway-waiting",
    "start_path": "/process-definition/key/gateway-waiting/start",
    "lease": "60",
    "attempt": "1",
    "n": "0",
}
PARAMETERS = {
    **{name: f":{name}" for name in VARIABLES},
    # pgbench can't define an empty variable: no caller (the gateway's own
    # authentication is off) and no tenant are literals
    "caller": "''",
    "tenant_id": "''",
    "business_key": _KEY,
    "fingerprint": f"sha256({_BODY})",
    "request_body": _BODY,
    "process_instance_id": "gen_random_uuid()::text",
    "response": _RESPONSE,
    # the record names the reservation that the reserve just made, as the
    # gateway does: the reserve's row is stored in variables with this prefix
    "reservation_id": f":{_RESERVED}reservation_id",
}
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_TPS = re.compile(r"^tps = ([\d.]+)", re.MULTILINE)
_PROCESSED = re.compile(r"actually processed: (\d+)", re.MULTILINE)
_FAILED = re.compile(r"number of failed transactions: (\d+)", re.MULTILINE)


def pgbench_binary() -> Path:
    """Return the pgbench that comes with the PostgreSQL server binaries."""
    return find_bindir() / "pgbench"


def script() -> str:
    """Return the pgbench script: the gateway's reserve, then its record."""
    statements = [
        _pgbench_sql(store._RESERVE, end=f" \\gset {_RESERVED}"),
        _pgbench_sql(store._RECORD),
    ]
    return "\\set n :n + 1\n\\set r random(0, 2147483647)\n" + "".join(statements)


def _pgbench_sql(statement: str, end: str = ";") -> str:
    """Put the bench's values in, on one line, ended by a semicolon or `end`."""
    unknown = set(_PLACEHOLDER.findall(statement)) - set(PARAMETERS)
    if unknown:
        # the store gained a parameter that this script does not know a value for
        raise RuntimeError(
            f"no pgbench value for {sorted(unknown)} in gateway/store.py"
        )
    filled = _PLACEHOLDER.sub(lambda match: PARAMETERS[match.group(1)], statement)
    return " ".join(filled.split()) + end + "\n"


def run_pgbench(
    url: str,
    clients: int,
    seconds: float,
    *,
    cpus: frozenset[int],
    workdir: Path,
    tag: str,
) -> LoadFigures:
    """Run the script with `clients` connections and return its figures."""
    workdir.mkdir(parents=True, exist_ok=True)
    script_path = workdir / "gateway-start.sql"
    script_path.write_text(script())
    log_prefix = workdir / f"log-{tag}"
    command = [
        str(pgbench_binary()),
        "--no-vacuum",
        # the gateway's psycopg prepares a statement after its fifth use
        "--protocol=prepared",
        f"--client={clients}",
        f"--jobs={max(1, min(clients, len(cpus)))}",
        f"--time={max(1, round(seconds))}",
        *(f"--define={name}={value}" for name, value in VARIABLES.items()),
        f"--define=tag={tag}",
        f"--file={script_path}",
        "--log",
        f"--log-prefix={log_prefix}",
        url,
    ]
    before = children_cpu_seconds()
    with launched_on(cpus):
        done = subprocess.run(  # noqa: S603 -- our own command line
            command, capture_output=True, text=True, check=False
        )
    client_cpu = children_cpu_seconds() - before
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed ({done.returncode}): {done.stderr}")
    latencies = _latencies(workdir, log_prefix.name)
    return _figures(done.stdout, latencies, client_cpu)


def _latencies(workdir: Path, prefix: str) -> list[float]:
    """Read each transaction's latency (ms) from pgbench's logs, then drop them."""
    latencies = []
    for path in workdir.glob(f"{prefix}.*"):
        for line in path.read_text().splitlines():
            # client_id transaction_no latency_us script_no epoch epoch_us
            latencies.append(int(line.split()[2]) / 1000)
        path.unlink()
    return sorted(latencies)


def _figures(output: str, latencies: list[float], client_cpu: float) -> LoadFigures:
    tps, processed, failed = (
        _number(pattern, output) for pattern in (_TPS, _PROCESSED, _FAILED)
    )
    if not latencies:
        raise RuntimeError(f"pgbench logged no transaction:\n{output}")
    return LoadFigures(
        requests=int(processed),
        seconds=round(processed / tps, 3) if tps else 0.0,
        p50_ms=_percentile(latencies, 50),
        p99_ms=_percentile(latencies, 99),
        mean_ms=round(sum(latencies) / len(latencies), 3),
        max_ms=latencies[-1],
        errors=int(failed),
        non_2xx=0,
        client_cpu_s=round(client_cpu, 3),
    )


def _number(pattern: re.Pattern[str], output: str) -> float:
    found = pattern.search(output)
    if found is None:
        raise RuntimeError(f"pgbench printed no {pattern.pattern!r}:\n{output}")
    return float(found.group(1))


def _percentile(ordered: list[float], percent: float) -> float:
    """Return the nearest-rank percentile of sorted values."""
    rank = max(1, -(-len(ordered) * percent // 100))
    return ordered[int(rank) - 1]
