"""Read the benchmark's knobs from the environment, with a quick smoke mode."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PINNINGS = ("pinned", "unpinned")


@dataclasses.dataclass(frozen=True)
class BenchSettings:
    """Everything a run needs to know, read once at the start."""

    quick: bool
    duration: float
    warmup: float
    repeats: int
    bulk_rows: int
    replay_keys: int
    engine_warmup: float
    concurrencies: tuple[int, ...]
    # the arrival rates of the open loop, per second, swept upwards
    open_rates: tuple[int, ...]
    pinnings: tuple[str, ...]
    # None: one worker per CPU that the gateway may use in a pinning mode
    gateway_workers: int | None
    gateway_threads: int
    # GATEWAY_WORKER_CLASS of every gateway; the product's default unless asked
    gateway_worker_class: str
    engine_heap: str
    durable: bool
    profile: bool
    results_dir: Path

    def as_dict(self) -> dict[str, object]:
        """Return the settings as plain JSON values."""
        values = dataclasses.asdict(self)
        values["results_dir"] = str(self.results_dir)
        return values


def load_settings(
    environ: Mapping[str, str] | None = None, profile: bool = False
) -> BenchSettings:
    """Build the settings; BENCH_QUICK=1 only changes the defaults."""
    env = os.environ if environ is None else environ
    quick = _flag(env, "BENCH_QUICK", False)
    return BenchSettings(
        quick=quick,
        duration=_number(env, "BENCH_DURATION", 1.0 if quick else 10.0),
        warmup=_number(env, "BENCH_WARMUP", 1.0 if quick else 3.0),
        repeats=int(_number(env, "BENCH_REPEATS", 1 if quick else 3)),
        bulk_rows=int(_number(env, "BENCH_ROWS", 200_000 if quick else 10_000_000)),
        replay_keys=int(_number(env, "BENCH_REPLAY_KEYS", 100 if quick else 1000)),
        # the engine's JIT needs tens of seconds of load before it is steady; even
        # after 60 s, D at c=1 still speeds up over the repeats of one run
        engine_warmup=_number(env, "BENCH_ENGINE_WARMUP", 3.0 if quick else 60.0),
        concurrencies=_integers(env, "BENCH_CONCURRENCY", (1, 16)),
        open_rates=_integers(
            env,
            "BENCH_OPEN_RATES",
            (50, 100) if quick else tuple(range(50, 425, 25)),
        ),
        pinnings=_pinnings(env),
        gateway_workers=(
            int(_number(env, "BENCH_WORKERS", 1)) if env.get("BENCH_WORKERS") else None
        ),
        gateway_threads=int(_number(env, "BENCH_THREADS", 16)),
        gateway_worker_class=env.get("BENCH_WORKER_CLASS", "gthread"),
        engine_heap=env.get("BENCH_ENGINE_HEAP", "2g"),
        durable=_flag(env, "BENCH_DURABLE", True),
        profile=profile,
        results_dir=Path(env.get("BENCH_RESULTS", str(RESULTS_DIR))),
    )


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SystemExit(f"{name} must be 1 or 0, got {raw!r}")


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise SystemExit(f"{name} must be greater than 0, got {raw!r}")
    return value


def _integers(
    env: Mapping[str, str], name: str, default: tuple[int, ...]
) -> tuple[int, ...]:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        values = tuple(int(part) for part in raw.split(","))
    except ValueError:
        raise SystemExit(f"{name} must be numbers like 1,16, got {raw!r}") from None
    if not values or min(values) <= 0:
        raise SystemExit(f"{name} must be positive numbers, got {raw!r}")
    return values


def _pinnings(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("BENCH_PINNING", "").strip()
    if not raw:
        return PINNINGS
    chosen = tuple(part.strip() for part in raw.split(","))
    unknown = [name for name in chosen if name not in PINNINGS]
    if unknown:
        raise SystemExit(f"BENCH_PINNING must name {' or '.join(PINNINGS)}")
    return chosen
