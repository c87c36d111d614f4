"""The benchmark's ratios: medians against medians, spread from paired repeats."""

from __future__ import annotations

import math
from typing import Any

import pytest

from bench import ratios
from bench.stats import spread


def mode(**cases: list[tuple[int, float, float]]) -> dict[str, Any]:
    """Build one mode's figures: per case, repeats of (c, throughput, p50)."""
    found: dict[str, Any] = {}
    for name, repeats in cases.items():
        by_concurrency = found.setdefault(name, {"concurrency": {}})["concurrency"]
        for concurrency, throughput, p50 in repeats:
            runs = by_concurrency.setdefault(str(concurrency), {"repeats": []})
            runs["repeats"].append(
                {"throughput": throughput, "p50_ms": p50, "p99_ms": p50 * 2}
            )
    return {"cases": found}


def line(results: list[dict[str, Any]], label: str) -> dict[str, Any]:
    return next(result for result in results if result["label"] == label)


def test_throughput_ratio_divides_medians_and_pairs_repeats_in_order() -> None:
    figures = mode(
        G=[(16, 100, 0), (16, 300, 0), (16, 200, 0)],
        D=[(16, 400, 0), (16, 400, 0), (16, 1000, 0)],
    )

    result = line(ratios.evaluate(figures), "G/D throughput, c=16")

    assert result["value"] == 0.5
    assert result["unit"] == "x"
    assert (result["paired_min"], result["paired_max"]) == (0.2, 0.75)
    assert result["paired_median"] == 0.25


def test_added_latency_subtracts_medians_at_concurrency_one() -> None:
    figures = mode(
        G=[(1, 0, 5.0), (1, 0, 7.0), (16, 0, 90.0)],
        D=[(1, 0, 2.0), (1, 0, 3.0), (16, 0, 10.0)],
    )

    result = line(ratios.evaluate(figures), "G-D added p50, c=1")

    assert result["value"] == pytest.approx(3.5)
    assert result["unit"] == "ms"


def test_ratio_of_a_case_that_did_not_run_has_no_value() -> None:
    result = line(ratios.evaluate(mode(G=[(16, 1, 1)])), "G/D throughput, c=16")

    assert result["value"] is None


def test_throughput_against_nothing_is_not_a_number() -> None:
    figures = mode(S=[(16, 10, 1)], L=[(16, 0, 1)])

    result = line(ratios.evaluate(figures), "S/L throughput, c=16")

    assert math.isnan(result["value"])


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([3.0, 1.0, 2.0], {"median": 2.0, "min": 1.0, "max": 3.0}),
        (
            [1.0, 2.0, 3.0, 4.0, 100.0],
            {"median": 3.0, "min": 1.0, "max": 100.0, "iqr": 50.5},
        ),
    ],
)
def test_spread_gives_the_interquartile_range_only_from_four_repeats(
    values: list[float], expected: dict[str, float]
) -> None:
    assert spread(values) == expected


def sweep(rates: list[int], **sustained: list[int | None]) -> dict[str, Any]:
    """Build an open-loop sweep: per case, the highest rate each repeat sustained."""
    cases = {
        name: [{"sustained_rate": rate} for rate in repeats]
        for name, repeats in sustained.items()
    }
    return {"rates": rates, "cases": cases}


def test_open_loop_ratio_divides_the_median_sustained_rates() -> None:
    swept = sweep([50, 75, 100], GP=[75, 50, 100], DP=[100, 100, 75])

    result = ratios.open_loop_ratio(swept)

    assert result["value"] == 0.75
    assert (result["paired_min"], result["paired_max"]) == (0.5, 1.333)


def test_open_loop_ratio_is_undefined_below_the_sweeps_lowest_rate() -> None:
    swept = sweep([150, 175], GP=[None, None, 150], DP=[175, None, 150])

    result = ratios.open_loop_ratio(swept)

    assert result["value"] is None
    assert result["below"] == 150
