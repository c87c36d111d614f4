"""The ratios the benchmark exists for, computed from one mode's raw figures.

Each ratio is the ratio of the two medians. Its spread pairs the repeats: the
cases ran interleaved, so repeat i of G and repeat i of D ran side by side.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable
from typing import Any

Combine = Callable[[float, float], float]


@dataclasses.dataclass(frozen=True)
class Ratio:
    """One line of the ratio table: a figure of one case against another's."""

    label: str
    numerator: str
    denominator: str
    concurrency: int
    figure: str
    combine: Combine
    unit: str


def _divide(a: float, b: float) -> float:
    return a / b if b else float("nan")


def _subtract(a: float, b: float) -> float:
    return a - b


def _throughput(label: str, top: str, bottom: str, concurrency: int) -> Ratio:
    return Ratio(label, top, bottom, concurrency, "throughput", _divide, "x")


def _added(label: str, top: str, bottom: str, figure: str) -> Ratio:
    # latency is compared at c=1, where queueing doesn't hide what a case adds
    return Ratio(label, top, bottom, 1, figure, _subtract, "ms")


RATIOS = (
    _throughput("G/D throughput, c=16", "G", "D", 16),
    _added("G-D added p50, c=1", "G", "D", "p50_ms"),
    _added("G-D added p99, c=1", "G", "D", "p99_ms"),
    _throughput("GP/DP throughput, c=16 (engine on PostgreSQL)", "GP", "DP", 16),
    _added("GP-DP added p50, c=1 (engine on PostgreSQL)", "GP", "DP", "p50_ms"),
    _added("GP-DP added p99, c=1 (engine on PostgreSQL)", "GP", "DP", "p99_ms"),
    _throughput("S/L throughput, c=16", "S", "L", 16),
    _throughput("S/L throughput, c=1", "S", "L", 1),
    _throughput("R/S throughput (check on), c=16", "R_check", "S", 16),
    _throughput("R/S throughput (check on, no cache), c=16", "R_nocache", "S", 16),
    _throughput("R/S throughput (check off), c=16", "R_nocheck", "S", 16),
    _throughput("G10M/G throughput, c=16", "G10M", "G", 16),
    _added("G10M-G p50, c=1", "G10M", "G", "p50_ms"),
    _throughput("S10M/S throughput, c=16", "S10M", "S", 16),
    _added("S10M-S p50, c=1", "S10M", "S", "p50_ms"),
    _throughput("D10M/D throughput, c=16 (engine drift)", "D10M", "D", 16),
    _throughput("R check on/off throughput, c=16", "R_check", "R_nocheck", 16),
    _added("R check on-off p50, c=1", "R_check", "R_nocheck", "p50_ms"),
    _throughput(
        "R check without cache on/off throughput, c=16", "R_nocache", "R_nocheck", 16
    ),
    _added("R check without cache on-off p50, c=1", "R_nocache", "R_nocheck", "p50_ms"),
    _throughput("W/S throughput, c=16 (wrk's headroom)", "W", "S", 16),
)


def evaluate(mode: dict[str, Any]) -> list[dict[str, Any]]:
    """Return every ratio of one mode, with its paired-repeat spread."""
    return [_evaluate(ratio, mode["cases"]) for ratio in RATIOS]


def _evaluate(ratio: Ratio, found: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"label": ratio.label, "unit": ratio.unit}
    top = _runs(found, ratio.numerator, ratio.concurrency)
    bottom = _runs(found, ratio.denominator, ratio.concurrency)
    if top is None or bottom is None:
        return {**result, "value": None}
    # from the repeats as recorded, so that the value and its spread agree
    median_top = statistics.median(run[ratio.figure] for run in top["repeats"])
    median_bottom = statistics.median(run[ratio.figure] for run in bottom["repeats"])
    paired = [
        ratio.combine(a[ratio.figure], b[ratio.figure])
        for a, b in zip(top["repeats"], bottom["repeats"], strict=False)
    ]
    return {
        **result,
        "value": round(ratio.combine(median_top, median_bottom), 3),
        "paired_min": round(min(paired), 3),
        "paired_max": round(max(paired), 3),
        "paired_median": round(statistics.median(paired), 3),
    }


def _runs(found: dict[str, Any], case: str, concurrency: int) -> Any:
    return found.get(case, {}).get("concurrency", {}).get(str(concurrency))


def sustained_rates(swept: dict[str, Any] | None, case: str) -> list[int]:
    """Return the highest rate that each repeat of an open-loop case sustained.

    A repeat that fell behind at the lowest rate counts as 0.
    """
    if not swept or case not in swept["cases"]:
        return []
    return [run["sustained_rate"] or 0 for run in swept["cases"][case]]


def open_loop_ratio(swept: dict[str, Any] | None) -> dict[str, Any]:
    """Return GP's highest sustained arrival rate against DP's, with its spread."""
    gateway = sustained_rates(swept, "GP")
    engine = sustained_rates(swept, "DP")
    if not swept or not gateway or not engine:
        return {"value": None}
    if statistics.median(gateway) == 0:
        # the sweep began above what the gateway sustained; a ratio of 0 would
        # claim it sustained nothing, when all that is known is an upper bound
        return {"value": None, "below": swept["rates"][0], "GP": gateway, "DP": engine}
    paired = [_divide(a, b) for a, b in zip(gateway, engine, strict=False)]
    return {
        "value": round(
            _divide(statistics.median(gateway), statistics.median(engine)), 3
        ),
        "paired_min": round(min(paired), 3),
        "paired_max": round(max(paired), 3),
        "GP": gateway,
        "DP": engine,
    }
