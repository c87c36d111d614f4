"""Read the gateway's metrics: a scrape's text, or one worker's sample file."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families


def sample_value(text: str, name: str, **labels: str) -> float:
    """Return the value of a sample in a scrape, or 0 if the scrape lacks it."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and _matches(sample.labels, labels):
                return sample.value
    return 0.0


def file_sample_value(path: Path, name: str, **labels: str) -> float:
    """Return the value of a sample in one process's multiprocess file."""
    return sum(
        sample.value
        for metric in MultiProcessCollector.merge([str(path)])
        for sample in metric.samples
        if sample.name == name and _matches(sample.labels, labels)
    )


def _matches(found: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(found.get(name) == value for name, value in wanted.items())
