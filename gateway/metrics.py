"""The gateway's Prometheus metrics, combined across gunicorn workers.

`gateway serve` sets PROMETHEUS_MULTIPROC_DIR before any worker starts, so each
worker writes its samples to files there and a scrape of any worker reads them
all. Without it (tests, a plain WSGI server) the metrics are per process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Histogram
from prometheus_client import generate_latest
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.errors import DatabaseUnavailable
from gateway.store import ReservationStore

CONTENT_TYPE = CONTENT_TYPE_LATEST
_LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
)

START_OUTCOMES = Counter(
    "gateway_start_outcomes",
    "Starts by how they ended",
    ["outcome"],
)
RECONCILIATIONS = Counter(
    "gateway_reconciliations",
    "Lookups of a start's identity in the engine, by what they found",
    ["result"],
)
DUPLICATE_INSTANCES = Counter(
    "gateway_duplicate_instances",
    "Lookups that found more than one instance for one identity",
)
ENGINE_LATENCY = Histogram(
    "gateway_engine_latency_seconds",
    "Time the engine took to answer a start",
    buckets=_LATENCY_BUCKETS,
)
REQUEST_LATENCY = Histogram(
    "gateway_request_latency_seconds",
    "Time the gateway took to answer a request",
    ["endpoint"],
    buckets=_LATENCY_BUCKETS,
)


class _PendingReservations(Collector):
    """Read the number of pending reservations from the database at scrape time."""

    def __init__(self, store: ReservationStore) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            pending = self.store.count_pending()
        except DatabaseUnavailable:
            return
        yield GaugeMetricFamily(
            "gateway_pending_reservations", "Reservations still pending", value=pending
        )


def render(store: ReservationStore) -> bytes:
    """Render every metric, from all workers when running under gunicorn."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        for metric in (
            START_OUTCOMES,
            RECONCILIATIONS,
            DUPLICATE_INSTANCES,
            ENGINE_LATENCY,
            REQUEST_LATENCY,
        ):
            registry.register(metric)
    registry.register(_PendingReservations(store))
    return generate_latest(registry)
