"""The gateway's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter
from prometheus_client import Histogram

START_OUTCOMES = Counter(
    "gateway_start_outcomes",
    "Starts by how they ended",
    ["outcome"],
)
RECONCILIATIONS = Counter(
    "gateway_reconciliations",
    "Lookups of a start's identity in the engine, by what they decided",
    ["result"],
)
DUPLICATE_INSTANCES = Counter(
    "gateway_duplicate_instances",
    "Lookups that found more than one instance for one identity",
)
ENGINE_LATENCY = Histogram(
    "gateway_engine_latency_seconds",
    "Time the engine took to answer a start",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
