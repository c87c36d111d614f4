"""`python -m bench.cpu_profile`: where a gateway worker's CPU goes, by component.

It starts PostgreSQL, the engine stub and one gateway with one worker, all on
the pinned mode's "everything else" CPU, drives new starts at c=16 with wrk and
samples the worker with py-spy, counting only the thread that holds the GIL, so
every sample is Python running on the CPU. The raw samples and a summary land
in bench/results/profile.txt and profile.md.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from bench import load
from bench.pinning import launched_on
from bench.pinning import pinning
from bench.profiler import py_spy_binary
from bench.servers import Database
from bench.servers import Gateway
from bench.settings import RESULTS_DIR
from bench.stub import EngineStub

log = logging.getLogger("bench.cpu_profile")

CONNECTIONS = 16
WARMUP_SECONDS = 5
SAMPLE_SECONDS = 20
SAMPLE_RATE = 250

# a sample belongs to the innermost frame whose file names a known component
_COMPONENTS = (
    ("gunicorn/", "gunicorn (gthread loop, HTTP parsing, response writing)"),
    ("concurrent/futures/", "gunicorn (gthread loop, HTTP parsing, response writing)"),
    ("selectors.py", "gunicorn (gthread loop, HTTP parsing, response writing)"),
    ("psycopg_pool/", "psycopg and its pool (PostgreSQL)"),
    ("psycopg/", "psycopg and its pool (PostgreSQL)"),
    ("urllib3/", "urllib3 and http.client (the engine call)"),
    ("http/client.py", "urllib3 and http.client (the engine call)"),
    ("email/", "urllib3 and http.client (the engine call)"),
    ("prometheus_client/", "prometheus_client (metrics)"),
    ("logging/", "logging"),
    ("flask/", "Flask and werkzeug"),
    ("werkzeug/", "Flask and werkzeug"),
    ("orjson", "the gateway's own code, and the standard library it calls"),
    ("gateway/", "the gateway's own code, and the standard library it calls"),
)


def main() -> int:
    """Profile a gateway worker under load and write the summary."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", force=True
    )
    raw = RESULTS_DIR / "profile.txt"
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as folder:
        root = Path(folder)
        root.chmod(0o755)
        requests = _record(root, raw)
    summary = summarize(_read(raw), requests)
    (RESULTS_DIR / "profile.md").write_text(summary)
    log.info("wrote %s and %s", raw, RESULTS_DIR / "profile.md")
    return 0


def _record(root: Path, output: Path) -> int:
    """Run the servers and the load, sample the worker; return the requests sent."""
    cpus = pinning("pinned").others
    with contextlib.ExitStack() as servers:
        gateway = _start_servers(root, cpus, servers)
        target = load.new_keys(gateway.url, "profile")
        load.run_wrk(target, CONNECTIONS, WARMUP_SECONDS, cpus)

        # py-spy runs on every CPU, so that it does not queue behind the gateway
        spy = subprocess.Popen(  # noqa: S603 -- our own command line
            [
                py_spy_binary(),
                "record",
                "--pid",
                str(gateway.worker_pids()[0]),
                "--duration",
                str(SAMPLE_SECONDS),
                "--rate",
                str(SAMPLE_RATE),
                "--gil",
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                str(output),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        figures = load.run_wrk(target, CONNECTIONS, SAMPLE_SECONDS + 2, cpus)
        spy.communicate(timeout=SAMPLE_SECONDS + 60)
    log.info("S at c=%d under py-spy: %.0f req/s", CONNECTIONS, figures.throughput)
    return figures.requests


def _start_servers(
    root: Path, cpus: frozenset[int], servers: contextlib.ExitStack
) -> Gateway:
    """Start PostgreSQL, the stub and a one-worker gateway on the given CPUs."""
    with launched_on(cpus):
        database = Database(root / "db", durable=True)
        servers.callback(database.stop)
        database.start()
        stub = EngineStub(root / "stub")
        servers.callback(stub.stop)
        stub.start()
        env = {"GATEWAY_WORKERS": "1", "GATEWAY_THREADS": "16"}
        gateway = Gateway("profiled", root, database.url, stub.url, env)
        servers.callback(gateway.stop)
        gateway.start()
    return gateway


def _read(path: Path) -> list[tuple[list[str], int]]:
    """Read py-spy's raw format: one stack per line, frames by ';', then a count."""
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def summarize(stacks: Iterable[tuple[list[str], int]], requests: int) -> str:
    """Return a Markdown summary: samples by component, and the hottest frames."""
    by_component: collections.Counter[str] = collections.Counter()
    by_frame: collections.Counter[str] = collections.Counter()
    total = 0
    for frames, count in stacks:
        total += count
        by_component[_component(frames)] += count
        for frame in set(frames):
            by_frame[_short(frame)] += count
    lines = [
        "# Where a gateway worker's CPU goes",
        "",
        f"`python -m bench.cpu_profile`: new starts (S) at c={CONNECTIONS} through one"
        " worker to the instant stub, everything on one CPU; py-spy sampled the"
        f" thread holding the GIL {SAMPLE_RATE} times a second for"
        f" {SAMPLE_SECONDS} s ({total} samples, {requests} requests sent while it"
        " ran). Each sample counts for the innermost frame of a known component.",
        "",
        "| component | share of the worker's Python CPU |",
        "|---|---|",
    ]
    for name, count in by_component.most_common():
        lines.append(f"| {name} | {100 * count / total:.1f}% |")
    lines += ["", "Frames on the stack in most samples:", ""]
    lines += ["| frame | share |", "|---|---|"]
    for frame, count in by_frame.most_common(40):
        lines.append(f"| `{frame}` | {100 * count / total:.1f}% |")
    return "\n".join([*lines, ""])


def _component(frames: list[str]) -> str:
    for frame in reversed(frames):
        for marker, name in _COMPONENTS:
            if marker in frame:
                return name
    return "other (threads, sockets)"


def _short(frame: str) -> str:
    """Return `function (file)` without the line number or the folders."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({path.rsplit('/', 1)[-1]})" if path else name


if __name__ == "__main__":
    sys.exit(main())
