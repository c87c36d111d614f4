"""Read process trees, memory and CPU time of running processes from /proc."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """Return the fields of /proc/PID/stat after the command name, or None."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # the command name is in parentheses and may itself contain spaces
    return text[text.rindex(")") + 2 :].split()


def parent_of(pid: int) -> int | None:
    """Return the parent pid of a process, or None if it is gone."""
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[1])


def children_of(pid: int) -> list[int]:
    """Return the pids of the live children of a process."""
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit() and parent_of(int(entry.name)) == pid:
            found.append(int(entry.name))
    return sorted(found)


def tree_of(pid: int) -> list[int]:
    """Return a process and all its live descendants."""
    parents: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            parent = parent_of(int(entry.name))
            if parent is not None:
                parents.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, []))
    return tree


def cpu_seconds(pids: Iterable[int]) -> float:
    """Return the CPU time of the processes, including their reaped children."""
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            # utime, stime, cutime, cstime: a reaped child's time moves into its
            # parent's cutime/cstime, so a delta over a tree stays complete
            total += sum(int(value) for value in fields[11:15])
    return total / _TICKS


def rss_kib(pid: int) -> int | None:
    """Return the resident set size (VmRSS) of a process in KiB."""
    try:
        lines = (PROC / str(pid) / "status").read_text().splitlines()
    except FileNotFoundError:
        return None
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def is_alive(pid: int) -> bool:
    """Tell whether a process exists and is not a zombie."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"
