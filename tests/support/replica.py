"""A real `gateway serve` process (gunicorn), which a test may kill or pause."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from devenv.ports import free_port
from devenv.ports import wait_until

GATEWAY = str(Path(sys.executable).parent / "gateway")


class Replica:
    """One gunicorn master with its workers, in a process group of its own."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        host: str = "127.0.0.1",
        port: int | None = None,
    ) -> None:
        self.host = host
        self.port = free_port() if port is None else port
        self.env = {
            **os.environ,
            **env,
            "GATEWAY_HOST": host,
            "GATEWAY_PORT": str(self.port),
        }
        if "GATEWAY_RUNTIME_DIR" not in env:
            # a replica that a test kills can't clean up after itself, so its
            # heartbeat and metrics files stay with the test's, not in /dev/shm
            runtime = log_path.parent / f"runtime-{self.port}"
            runtime.mkdir(parents=True, exist_ok=True)
            self.env["GATEWAY_RUNTIME_DIR"] = str(runtime)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Replica:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [GATEWAY, "serve"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            # its own group, so that a kill reaches the master and every worker
            start_new_session=True,
        )
        log.close()
        wait_until(self._healthy, 30, f"gateway replica on port {self.port}")
        return self

    def kill(self) -> None:
        """Crash the replica: SIGKILL to the master and its workers at once."""
        self._signal(signal.SIGKILL)
        assert self.process is not None
        self.process.wait(timeout=10)

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self._signal(signal.SIGCONT)
        # an orchestrator signals the master, which stops its workers gracefully
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()

    def _signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"the replica exited; see {self.log_path}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False
