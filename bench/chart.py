"""Draw throughput and p50/p99 latency per case as one PNG."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes

# a bare Figure renders to a file without pyplot's global state or a display
from matplotlib.figure import Figure

from bench import cases

log = logging.getLogger(__name__)

_WIDTH = 0.8


def write_chart(document: dict[str, Any], path: Path) -> None:
    """Plot each mode in a row: throughput on the left, latency on the right."""
    modes: dict[str, Any] = document["modes"]
    figure = Figure(figsize=(15, 5 * len(modes)))
    axes = figure.subplots(len(modes), 2, squeeze=False)
    for row, (name, mode) in enumerate(modes.items()):
        names = [case.name for case in cases.ALL if case.name in mode["cases"]]
        _throughput(axes[row][0], name, names, mode["cases"])
        _latency(axes[row][1], name, names, mode["cases"])
    title = "Gateway benchmark"
    if document["meta"]["settings"]["quick"]:
        title += " (QUICK SMOKE RUN: not meaningful)"
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    log.info("wrote %s", path)


def _concurrencies(found: dict[str, Any], names: list[str]) -> list[str]:
    seen: list[str] = []
    for name in names:
        for concurrency in found[name]["concurrency"]:
            if concurrency not in seen:
                seen.append(concurrency)
    return sorted(seen, key=int)


def _throughput(axis: Axes, mode: str, names: list[str], found: dict[str, Any]) -> None:
    """Bars of median req/s per case and concurrency, whiskers from min to max."""
    levels = _concurrencies(found, names)
    width = _WIDTH / len(levels)
    for index, concurrency in enumerate(levels):
        medians, low, high = [], [], []
        for name in names:
            summary = found[name]["concurrency"].get(concurrency, {}).get("summary")
            spread = summary["throughput"] if summary else None
            medians.append(spread["median"] if spread else 0.0)
            low.append(spread["median"] - spread["min"] if spread else 0.0)
            high.append(spread["max"] - spread["median"] if spread else 0.0)
        offsets = [
            x + (index - (len(levels) - 1) / 2) * width for x in range(len(names))
        ]
        axis.bar(offsets, medians, width, yerr=[low, high], label=f"c={concurrency}")
    _label(axis, names)
    axis.set_ylabel("requests per second (log)")
    axis.set_title(f"{mode}: throughput, median with min-max")


def _latency(axis: Axes, mode: str, names: list[str], found: dict[str, Any]) -> None:
    """Bars of median p50 and p99 per case, for each concurrency."""
    series = [
        (concurrency, figure)
        for concurrency in _concurrencies(found, names)
        for figure in ("p50_ms", "p99_ms")
    ]
    width = _WIDTH / len(series)
    for index, (concurrency, figure) in enumerate(series):
        values = []
        for name in names:
            summary = found[name]["concurrency"].get(concurrency, {}).get("summary")
            values.append(summary[figure]["median"] if summary else 0.0)
        offsets = [
            x + (index - (len(series) - 1) / 2) * width for x in range(len(names))
        ]
        label = f"{figure.removesuffix('_ms')} c={concurrency}"
        axis.bar(offsets, values, width, label=label)
    _label(axis, names)
    axis.set_ylabel("latency, ms (log)")
    axis.set_title(f"{mode}: p50 and p99 latency, median of repeats")


def _label(axis: Axes, names: list[str]) -> None:
    """Name the cases, use a log scale and put the legend under the bars."""
    axis.set_xticks(range(len(names)), names, rotation=20)
    axis.set_yscale("log")
    axis.grid(axis="y", which="major", alpha=0.3)
    axis.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=4, fontsize="small"
    )
