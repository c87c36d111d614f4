"""Which CPUs each server runs on, and launching processes on those CPUs.

Pinned, the engine gets CPU 0 and everything else (gateway, PostgreSQL, the
stub, wrk, pgbench) CPU 1, so the engine's work never competes with the
gateway's. Unpinned, every process may use every CPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Iterator

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Pinning:
    """The CPU sets of one pinning mode."""

    name: str
    engine: frozenset[int]
    others: frozenset[int]

    def as_dict(self) -> dict[str, object]:
        """Return the CPU sets as JSON values."""
        return {
            "name": self.name,
            "engine": sorted(self.engine),
            "others": sorted(self.others),
        }


def pinning(name: str) -> Pinning:
    """Return the CPU sets of a pinning mode on this machine."""
    cpus = sorted(os.sched_getaffinity(0))
    everything = frozenset(cpus)
    if name == "unpinned":
        return Pinning(name, everything, everything)
    if len(cpus) < 2:
        raise SystemExit("pinned runs need at least two CPUs")
    return Pinning(name, frozenset({cpus[0]}), frozenset({cpus[1]}))


@contextlib.contextmanager
def launched_on(cpus: frozenset[int]) -> Iterator[None]:
    """Make processes launched inside the block run on the given CPUs.

    This is what `taskset -c` does: a child inherits the affinity of the thread
    that forks it, and so do all of its own threads and children, such as the
    backends that PostgreSQL's postmaster forks later.
    """
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def affinity_of(pid: int) -> list[int] | None:
    """Return the CPUs a running process may use, or None if it is gone."""
    try:
        return sorted(os.sched_getaffinity(pid))
    except ProcessLookupError:
        return None
