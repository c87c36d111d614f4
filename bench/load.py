"""Drive HTTP load with wrk and a Lua script, and read back its figures."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

from bench.figures import LoadFigures
from bench.figures import children_cpu_seconds
from bench.pinning import launched_on

log = logging.getLogger(__name__)

LUA_DIR = Path(__file__).resolve().parent / "lua"
NEW_KEYS = LUA_DIR / "new_keys.lua"
REPLAY = LUA_DIR / "replay.lua"
START_PATH = "/engine-rest/process-definition/key/gateway-waiting/start"
_MARK = "BENCH_RESULT "
# a start never takes this long; a request that does counts as a timeout
_TIMEOUT = "30s"


def wrk_binary() -> str:
    """Return Debian's wrk, which the benchmark setup installs."""
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    return found


def wrk_version() -> str:
    """Return wrk's version, as the first line it prints about itself."""
    done = subprocess.run(  # noqa: S603 -- our own command line
        [wrk_binary(), "-v"], capture_output=True, text=True, check=False
    )
    first = (done.stdout + done.stderr).strip().splitlines()[0]
    return first.split(" Copyright")[0]


def new_keys(base_url: str, tag: str) -> tuple[Path, str, list[str]]:
    """Return a wrk target that starts a new businessKey with every request."""
    return NEW_KEYS, base_url, [START_PATH, tag]


def replays(base_url: str, prefix: str, count: int) -> tuple[Path, str, list[str]]:
    """Return a wrk target that cycles through `count` recorded businessKeys."""
    return REPLAY, base_url, [START_PATH, prefix, str(count)]


def run_wrk(
    target: tuple[Path, str, list[str]],
    connections: int,
    seconds: float,
    cpus: frozenset[int],
) -> LoadFigures:
    """Run wrk on the given CPUs against the target and return its figures."""
    script, url, args = target
    # one wrk thread per CPU it may use is enough: a thread drives many
    # connections, and more threads than CPUs only take turns
    threads = max(1, min(connections, len(cpus)))
    command = [
        wrk_binary(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={_TIMEOUT}",
        "-s",
        str(script),
        url,
        "--",
        *args,
    ]
    before = children_cpu_seconds()
    with launched_on(cpus):
        done = subprocess.run(  # noqa: S603 -- our own command line
            command, capture_output=True, text=True, check=False
        )
    client_cpu = children_cpu_seconds() - before
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    return _parse(done.stdout, client_cpu)


def _parse(output: str, client_cpu: float) -> LoadFigures:
    """Read the JSON line that the Lua script's done() prints."""
    for line in output.splitlines():
        if line.startswith(_MARK):
            found = json.loads(line[len(_MARK) :])
            break
    else:
        raise RuntimeError(f"wrk printed no result line:\n{output}")
    return LoadFigures(
        requests=found["requests"],
        seconds=found["duration_us"] / 1e6,
        p50_ms=found["p50_us"] / 1000,
        p99_ms=found["p99_us"] / 1000,
        mean_ms=round(found["mean_us"] / 1000, 3),
        max_ms=found["max_us"] / 1000,
        errors=found["connect_errors"]
        + found["read_errors"]
        + found["write_errors"]
        + found["timeouts"],
        non_2xx=found["non_2xx"],
        client_cpu_s=round(client_cpu, 3),
    )
