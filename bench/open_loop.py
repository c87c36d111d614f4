"""Drive an open loop with vegeta: starts arrive at a fixed rate, answered or not.

wrk keeps exactly c requests open, so every millisecond a start spends inside
the gateway is a millisecond it is not inside the engine. Clients that don't
wait for one another keep arriving instead. vegeta sends at a fixed rate
whatever the answers do, which shows the highest rate that the engine sustains
with and without the gateway in front of it.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bench.figures import LoadFigures
from bench.figures import children_cpu_seconds
from bench.load import START_PATH
from bench.pinning import launched_on

log = logging.getLogger(__name__)

# installed by `make bench-deps` from the Go module proxy
VEGETA = Path(__file__).resolve().parent.parent / "build" / "bin" / "vegeta"
# a start never takes this long; a request that does counts as an error
_TIMEOUT = "30s"
# enough workers for every start in flight at the highest rate, with queueing;
# the cap only matters past that, where the rate is not sustained anyway
_MAX_WORKERS = 512
# a rate is sustained when vegeta sent (nearly) every start the rate asks for,
# every start got a 2xx, and the slowest starts did not queue: past what a case
# can serve, the queue grows for the whole step, and 1% too many starts for
# 10 s add about 100 ms to the last ones. A single stall of the engine or the
# disk past the limit also ends a sweep, so the figure is the median of sweeps
SENT_SHARE = 0.98
SUSTAINED_P99_MS = 250.0


def vegeta_binary() -> Path:
    """Return the vegeta that the benchmark setup installs."""
    if VEGETA.exists():
        return VEGETA
    found = shutil.which("vegeta")
    if found is None:
        raise SystemExit("vegeta is missing: make bench-deps installs it")
    return Path(found)


def write_targets(path: Path, base_url: str, tag: str, count: int) -> Path:
    """Write `count` start requests, each with a new businessKey, as vegeta's JSON."""
    url = base_url + START_PATH
    header = {"Content-Type": ["application/json"]}
    with path.open("w") as targets:
        for number in range(count):
            # a random leading part spreads the keys over the unique index
            key = f"order-{secrets.randbits(31):08x}-{tag}-{number}"
            body = json.dumps({"businessKey": key}).encode()
            target = {
                "method": "POST",
                "url": url,
                "body": base64.b64encode(body).decode(),
                "header": header,
            }
            targets.write(json.dumps(target) + "\n")
    return path


def run_vegeta(
    base_url: str,
    tag: str,
    rate: int,
    seconds: float,
    cpus: frozenset[int],
    *,
    workdir: Path,
) -> LoadFigures:
    """Send new starts at `rate` per second for `seconds`; return the figures.

    The businessKeys carry `tag`, which makes them unique to the run.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    # vegeta reads the targets lazily and stops at their end, so there is one
    # more than the run can send
    count = math.ceil(rate * seconds) + 1
    targets = write_targets(workdir / "targets.jsonl", base_url, tag, count)
    results = workdir / "results.bin"

    before = children_cpu_seconds()
    with launched_on(cpus):
        _vegeta(
            "attack",
            "-format=json",
            "-lazy",
            f"-targets={targets}",
            f"-rate={rate}/1s",
            f"-duration={seconds}s",
            f"-timeout={_TIMEOUT}",
            f"-max-workers={_MAX_WORKERS}",
            f"-output={results}",
        )
    client_cpu = children_cpu_seconds() - before

    report = _vegeta("report", "-type=json", str(results))
    return parse_report(json.loads(report), client_cpu)


def is_sustained(rate: int, seconds: float, figures: LoadFigures) -> bool:
    """Tell whether a run kept up with its arrival rate."""
    return (
        figures.errors == 0
        and figures.non_2xx == 0
        and figures.requests >= SENT_SHARE * rate * seconds
        and figures.p99_ms <= SUSTAINED_P99_MS
    )


def parse_report(report: dict[str, Any], client_cpu: float) -> LoadFigures:
    """Turn vegeta's JSON report into the benchmark's figures."""
    latencies = report["latencies"]
    codes = {str(code): int(count) for code, count in report["status_codes"].items()}
    # status 0 is vegeta's mark for a request that got no HTTP answer at all
    errors = codes.pop("0", 0)
    non_2xx = sum(count for code, count in codes.items() if not code.startswith("2"))
    return LoadFigures(
        requests=sum(codes.values()),
        # from the first request sent to the last answer received
        seconds=(report["duration"] + report["wait"]) / 1e9,
        p50_ms=latencies["50th"] / 1e6,
        p99_ms=latencies["99th"] / 1e6,
        mean_ms=round(latencies["mean"] / 1e6, 3),
        max_ms=latencies["max"] / 1e6,
        errors=errors,
        non_2xx=non_2xx,
        client_cpu_s=round(client_cpu, 3),
    )


def _vegeta(*arguments: str) -> str:
    done = subprocess.run(  # noqa: S603 -- our own command line
        [str(vegeta_binary()), *arguments], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"vegeta {arguments[0]} failed: {done.stderr.strip()}")
    return done.stdout
