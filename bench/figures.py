"""The figures of one load run, whichever tool produced them."""

from __future__ import annotations

import dataclasses
import resource


@dataclasses.dataclass(frozen=True)
class LoadFigures:
    """Throughput, latency and errors of one run of a load generator."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    errors: int
    non_2xx: int
    client_cpu_s: float

    @property
    def throughput(self) -> float:
        """Return the completed requests per second."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, float | int]:
        """Return the figures as JSON values, with the throughput."""
        return {**dataclasses.asdict(self), "throughput": round(self.throughput, 2)}


def children_cpu_seconds() -> float:
    """Return the CPU time of every child this process has waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
