"""Write a run's raw figures as JSON and its ratios and tables as Markdown."""

from __future__ import annotations

import json
import logging
import math
import statistics
from pathlib import Path
from typing import Any

from bench import cases
from bench import ratios

log = logging.getLogger(__name__)

_CPU_COLUMNS = (
    "gateway",
    "postgres",
    "engine",
    "engine_pg",
    "engine_postgres",
    "stub",
    "load_generator",
)


def write_json(document: dict[str, Any], path: Path) -> None:
    """Write every raw figure of the run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    log.info("wrote %s", path)


def write_markdown(document: dict[str, Any], path: Path) -> None:
    """Write the ratio table, the per-case figures, CPU and memory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(document))
    log.info("wrote %s", path)


def render(document: dict[str, Any]) -> str:
    """Return the Markdown report of one run."""
    modes: dict[str, Any] = document["modes"]
    parts = [_header(document), _ratio_table(modes)]
    for name, mode in modes.items():
        parts.append(_case_table(name, mode, document["meta"]["settings"]))
        parts.append(_open_loop_table(name, mode.get("open_loop")))
    parts.append(_cpu_table(modes))
    parts.append(_memory_table(modes))
    parts.append(_method(document))
    return "\n".join(parts)


def _header(document: dict[str, Any]) -> str:
    meta = document["meta"]
    settings = meta["settings"]
    lines = ["# Gateway benchmark", ""]
    if settings["quick"]:
        lines += [
            "> **Quick smoke run** (BENCH_QUICK=1): durations of about a second, one"
            " repeat and a small table. These figures only show that the benchmark"
            " works; they say nothing about the gateway.",
            "",
        ]
    lines += [
        f"- started {meta['started']}, took {meta['elapsed_s']:.0f} s on"
        f" {meta['cpus']} CPUs; load average before {meta['loadavg_before']},"
        f" after {meta['loadavg_after']} (other work on the machine skews figures)",
        f"- {settings['repeats']} repeats of {settings['duration']:g} s per case and"
        f" concurrency, after a {settings['warmup']:g} s warm-up each;"
        f" engine warm-up {settings['engine_warmup']:g} s",
        f"- gateway: {settings.get('gateway_worker_class', 'gthread')}"
        f" {_workers(document)} x {settings['gateway_threads']} threads;"
        f" {meta['versions'].get('postgres', 'PostgreSQL')}"
        f" ({'durable' if settings['durable'] else 'fsync off'});"
        f" {meta['versions'].get('wrk', 'wrk')};"
        f" {meta['versions'].get('nginx', 'nginx')} as the stub;"
        f" {meta['versions'].get('java', 'java')}",
        "",
    ]
    return "\n".join(lines)


def _ratio_table(modes: dict[str, Any]) -> str:
    names = list(modes)
    evaluated = {name: ratios.evaluate(mode) for name, mode in modes.items()}
    lines = [
        "## Ratios",
        "",
        "Median against median; in brackets the range over repeats paired in order.",
        "",
        "| figure | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for index, ratio in enumerate(ratios.RATIOS):
        cells = [_ratio_cell(evaluated[name][index]) for name in names]
        lines.append(f"| {ratio.label} | " + " | ".join(cells) + " |")
    cells = [
        _ratio_cell(
            {**ratios.open_loop_ratio(modes[name].get("open_loop")), "unit": "x"}
        )
        for name in names
    ]
    lines.append(
        "| GP/DP highest sustained arrival rate, open loop | "
        + " | ".join(cells)
        + " |"
    )
    for gateway in modes[names[0]]["memory_kib"]:
        cells = [_rss_cell(modes[name]["memory_kib"].get(gateway)) for name in names]
        lines.append(
            f"| RSS per worker, gateway `{gateway}` (MiB) | " + " | ".join(cells) + " |"
        )
    return "\n".join([*lines, ""])


def _ratio_cell(ratio: dict[str, Any]) -> str:
    value = ratio.get("value")
    if "below" in ratio:
        return f"n/a: GP fell behind at the lowest rate, {ratio['below']}/s"
    if value is None or math.isnan(value):
        return "n/a"
    unit = ratio["unit"]
    suffix = "x" if unit == "x" else " ms"
    return (
        f"{value:.2f}{suffix} ({ratio['paired_min']:.2f} to {ratio['paired_max']:.2f})"
    )


def _rss_cell(memory: dict[str, Any] | None) -> str:
    if not memory:
        return "n/a"
    values = [kib / 1024 for kib in memory["workers"].values() if kib is not None]
    return ", ".join(f"{value:.0f}" for value in values) or "n/a"


def _case_table(name: str, mode: dict[str, Any], settings: dict[str, Any]) -> str:
    lines = [
        f"## {name}: throughput and latency",
        "",
        f"CPUs: engine {mode['pinning']['engine']}, everything else"
        f" {mode['pinning']['others']}. Median of {settings['repeats']}"
        " repeats, min to max in brackets.",
        "",
        "| case | what | c | req/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for case in cases.ALL:
        entry = mode["cases"].get(case.name)
        if entry is None:
            continue
        for concurrency, runs in entry["concurrency"].items():
            summary = runs["summary"]
            errors = sum(run["errors"] + run["non_2xx"] for run in runs["repeats"])
            lines.append(
                f"| {case.name} | {entry['description']} | {concurrency} | "
                f"{_spread(summary['throughput'], 1)} | "
                f"{_spread(summary['p50_ms'], 2)} | {_spread(summary['p99_ms'], 2)} "
                f"| {errors} |"
            )
    return "\n".join([*lines, ""])


def _open_loop_table(name: str, swept: dict[str, Any] | None) -> str:
    if not swept:
        return ""
    criteria = swept["sustained_when"]
    lines = [
        f"## {name}: open loop, starts arriving at a fixed rate (vegeta)",
        "",
        f"Each repeat raises the rate, {swept['seconds']:g} s per step, until the"
        " case falls behind: vegeta sent fewer than"
        f" {criteria['share_sent']:.0%} of the starts the rate asks for, a start"
        f" got no 2xx, or the p99 rose over {criteria['p99_ms_at_most']:.0f} ms"
        " (the starts queued)."
        " Highest sustained rate per repeat; then the median p50 and p99 of the"
        " repeats at each rate.",
        "",
    ]
    for case in swept["cases"]:
        named = [
            _sustained_label(rate, swept["rates"])
            for rate in ratios.sustained_rates(swept, case)
        ]
        lines.append(f"- {case}: sustained {', '.join(named)}")
    lines += [
        "",
        "| rate/s | "
        + " | ".join(
            f"{case} req/s | {case} p50 ms | {case} p99 ms" for case in swept["cases"]
        )
        + " |",
        "|---|" + "---|" * 3 * len(swept["cases"]),
    ]
    for rate in swept["rates"]:
        cells = []
        for runs in swept["cases"].values():
            steps = [s for run in runs for s in run["steps"] if s["rate"] == rate]
            cells += _step_cells(steps)
        if any(cell != "" for cell in cells):
            lines.append(f"| {rate} | " + " | ".join(cells) + " |")
    return "\n".join([*lines, ""])


def _sustained_label(rate: int, swept_rates: list[int]) -> str:
    # the sweep's ends bound a rate rather than measure it
    if rate == 0:
        return f"below {swept_rates[0]}/s"
    if rate == swept_rates[-1]:
        return f"{rate}/s or more"
    return f"{rate}/s"


def _step_cells(steps: list[dict[str, Any]]) -> list[str]:
    if not steps:
        return ["", "", ""]
    behind = sum(not step["sustained"] for step in steps)
    mark = f" ({behind} behind)" if behind else ""
    return [
        f"{statistics.median(step['throughput'] for step in steps):.1f}{mark}",
        f"{statistics.median(step['p50_ms'] for step in steps):.1f}",
        f"{statistics.median(step['p99_ms'] for step in steps):.1f}",
    ]


def _spread(values: dict[str, float], digits: int) -> str:
    return (
        f"{values['median']:.{digits}f} "
        f"({values['min']:.{digits}f} to {values['max']:.{digits}f})"
    )


def _cpu_table(modes: dict[str, Any]) -> str:
    lines = [
        "## CPU time per request (ms), median repeat, c=16",
        "",
        "Who spends the CPU: summed over each component's processes (wrk or"
        " pgbench is the load generator).",
        "",
        "| mode | case | " + " | ".join(_CPU_COLUMNS) + " |",
        "|---|---|" + "---|" * len(_CPU_COLUMNS),
    ]
    for name, mode in modes.items():
        for case in cases.ALL:
            runs = mode["cases"].get(case.name, {}).get("concurrency", {}).get("16")
            if runs is None:
                continue
            ordered = sorted(runs["repeats"], key=lambda run: run["throughput"])
            median = ordered[len(ordered) // 2]["cpu_ms_per_request"]
            cells = [f"{median.get(column, 0.0):.3f}" for column in _CPU_COLUMNS]
            lines.append(f"| {name} | {case.name} | " + " | ".join(cells) + " |")
    return "\n".join([*lines, ""])


def _memory_table(modes: dict[str, Any]) -> str:
    lines = [
        "## Resident memory after the run (VmRSS, MiB)",
        "",
        "| mode | gateway | master | workers |",
        "|---|---|---|---|",
    ]
    for name, mode in modes.items():
        for gateway, memory in mode["memory_kib"].items():
            master = memory["master"]
            master_cell = "n/a" if master is None else f"{master / 1024:.0f}"
            lines.append(
                f"| {name} | {gateway} | {master_cell} | {_rss_cell(memory)} |"
            )
    return "\n".join([*lines, ""])


def _method(document: dict[str, Any]) -> str:
    meta = document["meta"]
    lines = ["## How it was measured", ""]
    for name, mode in document["modes"].items():
        bulk = mode["bulk_load"]
        lines.append(
            f"- {name}: G10M and S10M ran on {bulk['rows_in_table']} rows"
            f" ({bulk['table_size']}). Loaded by {bulk['method']}: rows in"
            f" {bulk['insert_seconds']:.0f} s, indexes rebuilt at"
            f" {bulk['with_index_rebuild_seconds']:.0f} s, VACUUM ANALYZE done at"
            f" {bulk['with_vacuum_seconds']:.0f} s."
        )
        if mode.get("profile"):
            lines.append(
                f"- {name}: profile of worker {mode['profile']['worker_pid']} during"
                f" an extra G at c=16 in `{mode['profile']['output']}`"
                f" ({mode['profile']['throughput']:.1f} req/s while profiled)."
            )
    lines += [f"- {note}" for note in meta["notes"]]
    return "\n".join([*lines, ""])


def _workers(document: dict[str, Any]) -> str:
    """Name the gateway's worker count of each mode."""
    counts = [
        f"{mode.get('gateway_workers', '?')} {name}"
        for name, mode in document["modes"].items()
    ]
    return "workers (" + ", ".join(counts) + ")"
