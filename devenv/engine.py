"""Build and run the bundled test engine, a Spring Boot app made with Maven."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from devenv.ports import wait_until

log = logging.getLogger(__name__)

ENGINE_DIR = Path(__file__).resolve().parent.parent / "engine"
FLAVOURS = ("operaton", "camunda")


def jar_path(flavour: str) -> Path:
    """Return where Maven puts the engine jar of a flavour."""
    return ENGINE_DIR / "target" / flavour / "test-engine.jar"


def build(flavour: str) -> Path:
    """Build the engine jar of a flavour unless it is already there."""
    jar = jar_path(flavour)
    if jar.exists():
        return jar
    command = [
        "mvn",
        "-q",
        "-B",
        "-f",
        str(ENGINE_DIR / "pom.xml"),
        "package",
        "-DskipTests",
    ]
    if flavour != "operaton":
        command.insert(1, f"-P{flavour}")
    log.info("building the %s engine with Maven", flavour)
    subprocess.run(command, check=True)
    return jar


class EngineProcess:
    """One running engine, started from its jar."""

    def __init__(
        self, flavour: str, port: int, log_path: Path, profiles: tuple[str, ...] = ()
    ) -> None:
        self.flavour = flavour
        self.profiles = profiles
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """Return the engine's REST base URL."""
        return f"http://127.0.0.1:{self.port}/engine-rest"

    def start(self, timeout: float = 240) -> None:
        """Start the engine and wait until its REST API answers."""
        jar = build(self.flavour)
        self._log = self.log_path.open("ab")
        java = os.environ.get("JAVA_HOME")
        executable = str(Path(java, "bin", "java")) if java else "java"
        self.process = subprocess.Popen(
            [
                executable,
                "-XX:TieredStopAtLevel=1",
                "-XX:+UseSerialGC",
                "-Xmx512m",
                "-jar",
                str(jar),
                f"--server.port={self.port}",
                "--server.address=127.0.0.1",
                *(
                    [f"--spring.profiles.active={','.join(self.profiles)}"]
                    if self.profiles
                    else []
                ),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(
                self._answers, timeout, f"the {self.flavour} engine on port {self.port}"
            )
        except BaseException:
            # an engine that never became ready must not outlive its caller
            self.stop()
            raise
        log.info("the %s engine is ready at %s", self.flavour, self.url)

    def warm_up(self, starts: int = 30) -> None:
        """Run some starts, so that the first real ones don't meet a cold JIT."""
        for number in range(starts):
            request = urllib.request.Request(  # noqa: S310 -- a loopback URL
                f"{self.url}/process-definition/key/gateway-straight/start",
                data=f'{{"businessKey": "warm-up-{number}"}}'.encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with contextlib.suppress(urllib.error.HTTPError):
                urllib.request.urlopen(request, timeout=30).close()  # noqa: S310

    def stop(self) -> None:
        """Stop the engine process that this object started."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"the engine exited early; see {self.log_path}")
        try:
            # /engine answers without credentials even when the engine wants them
            with urllib.request.urlopen(f"{self.url}/engine", timeout=2) as response:  # noqa: S310
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False
