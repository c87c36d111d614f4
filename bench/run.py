"""`python -m bench.run [--profile]`: the whole benchmark, one command.

For each pinning mode it starts its own servers (PostgreSQL, the engine, the
engine stub, three gateways), measures every case, and stops exactly the
processes it started, also after an error. Then it writes
bench/results/latest.json, latest.md and latest.png.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

from bench import chart
from bench import load
from bench import report
from bench import stub
from bench.pgbench import pgbench_binary
from bench.pinning import pinning
from bench.profiler import py_spy_binary
from bench.settings import BenchSettings
from bench.settings import load_settings
from bench.stack import start_stack
from bench.suite import run_mode
from devenv.postgres import find_bindir

log = logging.getLogger("bench.run")

NOTES = (
    "Pinned: the engine runs on CPU 0; the gateway, PostgreSQL, the stub, wrk and"
    " pgbench on CPU 1. Each is launched with that CPU affinity, as `taskset -c`"
    " does, and its threads and children (workers, backends) inherit it.",
    "Unpinned: every process may use both CPUs.",
    "D, G, S, W, G10M, S10M and D10M send a new businessKey with every request;"
    " R cycles through keys recorded before the run (bench/lua/*.lua).",
    "L is pgbench --protocol=prepared running _RESERVE and _RECORD from"
    " gateway/store.py, each its own autocommitted transaction, a new key per"
    " transaction, with as many connections as the other cases' concurrency. The"
    " gateway sends the same two statements per start: it checks a pooled"
    " connection by polling its socket, which sends nothing.",
    "Latency is wrk's own histogram of the whole HTTP round trip (pgbench: its"
    " per-transaction log). The load is a closed loop: c requests in flight.",
    "The engine is the bundled Operaton jar (H2 in memory, full JIT). It keeps"
    " every started instance, so the cases of a phase run interleaved, repeat by"
    " repeat, and D10M measures the engine again next to G10M. S10M shows the"
    " bulk-loaded table's effect on the gateway without the engine's cost.",
    "W is wrk straight at the stub: W/S shows how far wrk is from being the"
    " bottleneck; wrk's and pgbench's own CPU is in the CPU table.",
    "CPU per request sums utime+stime (with reaped children) over each"
    " component's processes from /proc.",
)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its results."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record a py-spy flame graph of one worker during G at c=16",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", force=True
    )
    settings = load_settings(profile=args.profile)
    _check_tools(settings)
    # SIGTERM must unwind through the finally blocks that stop the servers
    signal.signal(signal.SIGTERM, _exit_on_signal)
    document = _run(settings)
    results = settings.results_dir
    report.write_json(document, results / "latest.json")
    report.write_markdown(document, results / "latest.md")
    chart.write_chart(document, results / "latest.png")
    return 0


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _check_tools(settings: BenchSettings) -> None:
    """Fail before starting anything if a tool that the run needs is missing."""
    load.wrk_binary()
    stub.nginx_binary()
    if not pgbench_binary().exists():
        raise SystemExit(f"{pgbench_binary()} is missing")
    if settings.profile:
        py_spy_binary()


def _run(settings: BenchSettings) -> dict[str, Any]:
    """Measure each pinning mode on servers of its own."""
    started = datetime.datetime.now(datetime.UTC)
    clock = time.monotonic()
    loadavg_before = _loadavg()
    log.info("benchmark settings: %s", settings.as_dict())
    modes = {}
    for index, name in enumerate(settings.pinnings):
        profile_to = None
        if settings.profile and index == 0:
            profile_to = settings.results_dir / "profile.svg"
        modes[name] = _run_pinning(settings, name, profile_to)
    return {
        "meta": {
            "started": started.isoformat(timespec="seconds"),
            "elapsed_s": round(time.monotonic() - clock, 1),
            "command": " ".join([Path(sys.executable).name, "-m", "bench.run"]),
            "cpus": os.cpu_count(),
            "loadavg_before": loadavg_before,
            "loadavg_after": _loadavg(),
            "versions": _versions(),
            "settings": settings.as_dict(),
            "notes": list(NOTES),
        },
        "modes": modes,
    }


def _run_pinning(
    settings: BenchSettings, name: str, profile_to: Path | None
) -> dict[str, Any]:
    """Start a stack for one pinning mode, measure it, and always stop it."""
    log.info("=== %s ===", name)
    with (
        tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as folder,
        contextlib.ExitStack() as servers,
    ):
        root = Path(folder)
        # PostgreSQL may run as the postgres user, which must reach its folder
        root.chmod(0o755)
        try:
            stack = start_stack(settings, pinning(name), root, servers)
            return run_mode(settings, stack, root, profile_to)
        except BaseException:
            _keep_logs(root, settings.results_dir / f"failed-{name}")
            raise


def _keep_logs(root: Path, target: Path) -> None:
    """Copy the servers' logs out of the temporary folder before it goes."""
    target.mkdir(parents=True, exist_ok=True)
    for pattern in ("*.log", "stub/*.log", "db/postgres/*.log"):
        for path in root.glob(pattern):
            shutil.copy(path, target / path.name)
    log.error("the run failed; the servers' logs are in %s", target)


def _loadavg() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def _versions() -> dict[str, str]:
    """Return the version of every program the run used."""
    java = os.environ.get("JAVA_HOME")
    return {
        "python": platform.python_version(),
        "postgres": _first_line([str(find_bindir() / "postgres"), "--version"]),
        "wrk": load.wrk_version(),
        "nginx": _first_line([stub.nginx_binary(), "-v"]),
        "java": _first_line(
            [str(Path(java, "bin", "java")) if java else "java", "-version"]
        ),
    }


def _first_line(command: list[str]) -> str:
    done = subprocess.run(  # noqa: S603 -- our own command line
        command, capture_output=True, text=True, check=False
    )
    output = (done.stdout + done.stderr).strip()
    return output.splitlines()[0] if output else ""


if __name__ == "__main__":
    sys.exit(main())
