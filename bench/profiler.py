"""Profile one gateway worker with py-spy while a measurement runs."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

from bench.pinning import launched_on

log = logging.getLogger(__name__)


def py_spy_binary() -> str:
    """Return py-spy from the virtual environment, where pip installs it."""
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("py-spy is missing: .venv/bin/pip install py-spy")
    return found


class Profile:
    """A py-spy recording of one process, running in the background."""

    def __init__(self, pid: int, seconds: float, output: Path) -> None:
        self.pid = pid
        self.seconds = max(1, round(seconds))
        self.output = output
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, cpus: frozenset[int]) -> None:
        """Start recording; py-spy stops by itself after the given seconds."""
        self.output.parent.mkdir(parents=True, exist_ok=True)
        command = [
            py_spy_binary(),
            "record",
            "--pid",
            str(self.pid),
            "--duration",
            str(self.seconds),
            "--output",
            str(self.output),
            # sampling without pausing the worker keeps the measurement close to
            # an unprofiled one
            "--nonblocking",
        ]
        with launched_on(cpus):
            self.process = subprocess.Popen(  # noqa: S603 -- our own command line
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
        log.info("profiling gateway worker %d into %s", self.pid, self.output)

    def wait(self) -> None:
        """Wait for py-spy to write its flame graph."""
        assert self.process is not None
        output, _ = self.process.communicate(timeout=self.seconds + 60)
        if self.process.returncode != 0:
            log.warning("py-spy failed: %s", output.decode(errors="replace"))
        else:
            log.info("profile written to %s", self.output)

    def stop(self) -> None:
        """End py-spy if it still runs (after an error elsewhere)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
