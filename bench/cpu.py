"""Measure how much CPU each component spent during one measurement."""

from __future__ import annotations

import time

from bench import procfs

# a backend that pgbench just closed is reaped by the postmaster a moment later;
# only then does its CPU time show in the postmaster's cutime
_SETTLE = 0.2


class CpuMeter:
    """CPU seconds per component (a set of process trees) between two readings."""

    def __init__(self, roots: dict[str, list[int]]) -> None:
        self.roots = roots
        self._start: dict[str, float] = {}

    def start(self) -> None:
        """Take the first reading."""
        self._start = self._read()

    def stop(self) -> dict[str, float]:
        """Take the second reading; return each component's CPU seconds."""
        time.sleep(_SETTLE)
        end = self._read()
        return {name: round(end[name] - self._start[name], 3) for name in end}

    def _read(self) -> dict[str, float]:
        readings = {}
        for name, pids in self.roots.items():
            tree = [member for pid in pids for member in procfs.tree_of(pid)]
            readings[name] = procfs.cpu_seconds(tree)
        return readings
