"""Run every case of one pinning mode: warm-ups, interleaved repeats, phases.

Repeats are interleaved (D, G, R, ... then D, G, R, ... again) rather than run
case by case, so that a drift of the engine or the machine over the run, such
as the engine's in-memory database growing, affects every case alike.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import cases
from bench import dataset
from bench import open_loop
from bench import procfs
from bench import stats
from bench.cases import Case
from bench.cases import Context
from bench.cpu import CpuMeter
from bench.figures import LoadFigures
from bench.profiler import Profile
from bench.settings import BenchSettings
from bench.stack import ENGINE_GATEWAY
from bench.stack import ENGINE_ON_POSTGRES_GATEWAY
from bench.stack import Stack
from bench.stack import gateway_workers

log = logging.getLogger(__name__)

PROFILED_CONNECTIONS = 16


def run_mode(
    settings: BenchSettings, stack: Stack, workdir: Path, profile_to: Path | None
) -> dict[str, Any]:
    """Measure every case on a running stack; return the raw figures."""
    context = Context(stack, workdir, settings.replay_keys)
    _warm_engine(settings, context)
    dataset.seed_replay_keys(
        stack.gateways[ENGINE_GATEWAY].url, cases.REPLAY_PREFIX, settings.replay_keys
    )
    results: dict[str, Any] = {}
    _measure_phase(settings, context, cases.BEFORE_BULK, results)
    swept = _sweep_open_loop(settings, context)
    profiled = _profile(settings, context, profile_to) if profile_to else None
    log.info("bulk-loading %d rows", settings.bulk_rows)
    bulk = dataset.bulk_load(stack.database.url, settings.bulk_rows)
    log.info("bulk load done: %s", bulk)
    _measure_phase(settings, context, cases.AFTER_BULK, results)
    return {
        "pinning": stack.pinning.as_dict(),
        "gateway_workers": gateway_workers(settings, stack.pinning),
        "affinity": stack.affinities(),
        "cases": results,
        "open_loop": swept,
        "bulk_load": bulk,
        "memory_kib": _memory(stack),
        "profile": profiled,
    }


def _warm_engine(settings: BenchSettings, context: Context) -> None:
    """Load each engine until its JIT has compiled the start path."""
    for case in (cases.D, cases.DP):
        log.info("warming %s's engine up for %.0fs", case.name, settings.engine_warmup)
        case.run(context, 16, settings.engine_warmup, _tag("warm"))


def _measure_phase(
    settings: BenchSettings,
    context: Context,
    phase: Sequence[Case],
    results: dict[str, Any],
) -> None:
    """Warm each case up, then measure the repeats interleaved, per concurrency."""
    for connections in settings.concurrencies:
        for case in phase:
            case.run(context, connections, settings.warmup, _tag(case.name + "w"))
        runs: dict[str, list[tuple[LoadFigures, dict[str, Any]]]] = {
            case.name: [] for case in phase
        }
        for repeat in range(settings.repeats):
            for case in phase:
                measured = _measure(settings, context, case, connections, repeat)
                runs[case.name].append(measured)
        for case in phase:
            entry = results.setdefault(
                case.name, {"description": case.description, "concurrency": {}}
            )
            entry["concurrency"][str(connections)] = {
                "summary": stats.summarise([figures for figures, _ in runs[case.name]]),
                "repeats": [record for _, record in runs[case.name]],
            }


def _measure(
    settings: BenchSettings,
    context: Context,
    case: Case,
    connections: int,
    repeat: int,
) -> tuple[LoadFigures, dict[str, Any]]:
    """Run one repeat of a case and note the CPU each component spent on it."""
    tag = _tag(case.name)
    meter = CpuMeter(context.stack.roots())
    meter.start()
    figures = case.run(context, connections, settings.duration, tag)
    cpu = meter.stop()
    cpu["load_generator"] = figures.client_cpu_s
    requests = max(figures.requests, 1)
    record = {
        "repeat": repeat,
        "tag": tag,
        **figures.as_dict(),
        "cpu_s": cpu,
        "cpu_ms_per_request": {
            name: round(seconds * 1000 / requests, 3) for name, seconds in cpu.items()
        },
    }
    log.info(
        "%s c=%d #%d: %.1f req/s, p50 %.2f ms, p99 %.2f ms",
        case.name,
        connections,
        repeat + 1,
        figures.throughput,
        figures.p50_ms,
        figures.p99_ms,
    )
    if figures.errors or figures.non_2xx:
        log.warning(
            "%s c=%d: %d errors, %d non-2xx answers",
            case.name,
            connections,
            figures.errors,
            figures.non_2xx,
        )
    return figures, record


def _sweep_open_loop(settings: BenchSettings, context: Context) -> dict[str, Any]:
    """Raise the arrival rate of new starts until DP, then GP, falls behind.

    Each repeat sweeps the rates upwards and stops a case at the first rate it
    does not sustain; the highest rate it sustained is that repeat's figure.
    """
    stack = context.stack
    bases = {
        cases.DP.name: stack.engine_on_postgres.url.removesuffix("/engine-rest"),
        cases.GP.name: stack.gateways[ENGINE_ON_POSTGRES_GATEWAY].url,
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in bases}
    for repeat in range(settings.repeats):
        # the engine keeps every instance and slows as they pile up, so the
        # cases take turns at going first
        order = list(bases.items())
        for name, base in order if repeat % 2 == 0 else reversed(order):
            runs[name].append(_sweep(settings, context, name, base, repeat))
    return {
        "rates": list(settings.open_rates),
        "seconds": settings.duration,
        "sustained_when": {
            "share_sent": open_loop.SENT_SHARE,
            "p99_ms_at_most": open_loop.SUSTAINED_P99_MS,
            "errors_and_non_2xx": 0,
        },
        "cases": runs,
    }


def _sweep(
    settings: BenchSettings, context: Context, name: str, base: str, repeat: int
) -> dict[str, Any]:
    """Run one case at rising rates until it falls behind; return every step."""
    steps = []
    sustained = None
    for rate in settings.open_rates:
        figures = open_loop.run_vegeta(
            base,
            _tag(f"{name}open"),
            rate,
            settings.duration,
            context.stack.pinning.others,
            workdir=context.workdir / "vegeta",
        )
        kept_up = open_loop.is_sustained(rate, settings.duration, figures)
        steps.append({"rate": rate, "sustained": kept_up, **figures.as_dict()})
        log.info(
            "%s open loop #%d at %d/s: %.1f req/s, p50 %.2f ms, p99 %.2f ms%s",
            name,
            repeat + 1,
            rate,
            figures.throughput,
            figures.p50_ms,
            figures.p99_ms,
            "" if kept_up else ", fell behind",
        )
        if not kept_up:
            break
        sustained = rate
    return {"repeat": repeat, "sustained_rate": sustained, "steps": steps}


def _profile(settings: BenchSettings, context: Context, output: Path) -> dict[str, Any]:
    """Run G at c=16 once more with py-spy on one worker; not in the figures."""
    worker = context.stack.gateways[ENGINE_GATEWAY].worker_pids()[0]
    profile = Profile(worker, settings.duration, output)
    # on every CPU, so that py-spy does not queue behind the gateway on its one CPU
    profile.start(context.stack.pinning.engine | context.stack.pinning.others)
    try:
        figures = cases.G.run(
            context, PROFILED_CONNECTIONS, settings.duration, _tag("profile")
        )
        profile.wait()
    finally:
        profile.stop()
    return {
        "output": str(output),
        "worker_pid": worker,
        "case": cases.G.name,
        "connections": PROFILED_CONNECTIONS,
        **figures.as_dict(),
    }


def _memory(stack: Stack) -> dict[str, Any]:
    """Return the resident memory of every gateway's master and workers."""
    return {
        name: {
            "master": procfs.rss_kib(gateway.pid),
            "workers": {str(pid): procfs.rss_kib(pid) for pid in gateway.worker_pids()},
        }
        for name, gateway in stack.gateways.items()
    }


def _tag(name: str) -> str:
    """Return a tag that makes this run's businessKeys unique."""
    return f"{name.lower().replace('_', '')}{secrets.token_hex(4)}"
