"""Summarise repeated measurements: the median and the spread of each figure."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from bench.figures import LoadFigures

FIGURES = ("throughput", "p50_ms", "p99_ms")


def spread(values: Sequence[float]) -> dict[str, float]:
    """Return the median, minimum and maximum, plus the IQR from four values on."""
    summary = {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }
    if len(values) >= 4:
        # with three repeats quartiles would only restate min and max
        q1, _, q3 = statistics.quantiles(values, n=4)
        summary["iqr"] = round(q3 - q1, 3)
    return summary


def summarise(runs: Sequence[LoadFigures]) -> dict[str, dict[str, float]]:
    """Return the spread of throughput, p50 and p99 over repeated runs."""
    values = {
        "throughput": [run.throughput for run in runs],
        "p50_ms": [run.p50_ms for run in runs],
        "p99_ms": [run.p99_ms for run in runs],
    }
    return {name: spread(values[name]) for name in FIGURES}
