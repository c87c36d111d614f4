"""The long-running servers of a benchmark: PostgreSQL, the engine, the gateway.

Each class starts exactly one server, remembers its pid, and stops only that pid
(and, for the gateway, the workers it forked) again.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import psycopg

from bench import procfs
from devenv.engine import jar_path
from devenv.ports import free_port
from devenv.ports import wait_until
from devenv.postgres import SUPERUSER
from devenv.postgres import LocalPostgres

log = logging.getLogger(__name__)

GATEWAY = str(Path(sys.executable).parent / "gateway")
DATABASE = "bench"
ENGINE_DATABASE = "engine"
# applied with ALTER SYSTEM before the benchmark starts; three gateways of two
# workers may each open a pool of GATEWAY_THREADS connections, plus pgbench
POSTGRES_SETTINGS = {
    "max_connections": "200",
    "shared_buffers": "1GB",
    "max_wal_size": "4GB",
}


def stop_process(process: subprocess.Popen[bytes], name: str, timeout: float) -> None:
    """Stop one process that the benchmark started: SIGTERM, then SIGKILL."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log.warning("%s (pid %d) ignored SIGTERM; killing it", name, process.pid)
        process.kill()
        process.wait(timeout=10)


def answers(url: str) -> bool:
    """Tell whether a GET of the URL answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


class Database:
    """A throwaway PostgreSQL cluster with one migrated benchmark database."""

    def __init__(self, root: Path, durable: bool) -> None:
        root.mkdir(parents=True, exist_ok=True)
        # the server may run as the postgres user, which must reach its folder
        root.chmod(0o755)
        self.cluster = LocalPostgres(root / "postgres", free_port(), durable=durable)
        self.url = self.cluster.url(DATABASE)
        self.settings = dict(POSTGRES_SETTINGS)

    @property
    def pid(self) -> int:
        """Return the postmaster's pid."""
        return self.cluster.pid

    def start(self) -> None:
        """Start the cluster, tune it, and create and migrate the database."""
        self.cluster.start()
        with psycopg.connect(self.cluster.url(), autocommit=True) as conn:
            for name, value in self.settings.items():
                conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        # max_connections and shared_buffers only change with a restart
        self.cluster.stop()
        self.cluster.start()
        self.cluster.create_database(DATABASE)
        env = {**os.environ, "GATEWAY_DATABASE_URL": self.url}
        subprocess.run(  # noqa: S603 -- our own command line
            [GATEWAY, "migrate"], env=env, check=True, capture_output=True
        )
        log.info("PostgreSQL pid %d serves %s", self.pid, self.url)

    def stop(self) -> None:
        """Stop the cluster (pg_ctl stop, which signals only its postmaster)."""
        self.cluster.stop()


class EngineDatabase:
    """A PostgreSQL cluster of the engine's own, as an engine runs in production.

    It is a cluster apart from the gateway's, so that it can share the engine's
    CPUs: the engine and its database together are what the gateway fronts.
    """

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        # durable, like the gateway's: a production engine waits for its commits
        self.cluster = LocalPostgres(root / "postgres", free_port(), durable=True)

    @property
    def pid(self) -> int:
        """Return the postmaster's pid."""
        return self.cluster.pid

    @property
    def jdbc_url(self) -> str:
        """Return the JDBC URL of the engine's database."""
        return f"jdbc:postgresql://127.0.0.1:{self.cluster.port}/{ENGINE_DATABASE}"

    def start(self) -> None:
        """Start the cluster and create the empty database the engine fills."""
        self.cluster.start()
        self.cluster.create_database(ENGINE_DATABASE)
        log.info("engine's PostgreSQL pid %d on port %d", self.pid, self.cluster.port)

    def stop(self) -> None:
        """Stop the cluster (pg_ctl stop, which signals only its postmaster)."""
        self.cluster.stop()


class Engine:
    """The bundled Operaton engine, started from its jar with a benchmark heap.

    Without a database it keeps its data in H2 in memory, as in the tests; with
    one it uses that PostgreSQL database and creates the engine's schema there.
    """

    def __init__(
        self, log_path: Path, heap: str, database: EngineDatabase | None = None
    ) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.heap = heap
        self.database = database
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Return the engine's REST base URL."""
        return f"http://127.0.0.1:{self.port}/engine-rest"

    @property
    def pid(self) -> int:
        """Return the JVM's pid."""
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 300) -> None:
        """Start the JVM and wait until the REST API answers."""
        jar = jar_path("operaton")
        if not jar.exists():
            raise SystemExit(f"{jar} is missing; build it with make {jar}")
        java = os.environ.get("JAVA_HOME")
        executable = str(Path(java, "bin", "java")) if java else "java"
        # unlike the test engine, the full JIT: the benchmark measures steady state,
        # and a heap large enough for the instances that a run leaves in H2
        command = [
            executable,
            f"-Xmx{self.heap}",
            "-jar",
            str(jar),
            f"--server.port={self.port}",
            "--server.address=127.0.0.1",
        ]
        if self.database is not None:
            command += [
                f"--spring.datasource.url={self.database.jdbc_url}",
                f"--spring.datasource.username={SUPERUSER}",
                "--spring.datasource.password=",
            ]
        with self.log_path.open("ab") as output:
            self.process = subprocess.Popen(  # noqa: S603 -- our own command line
                command, stdout=output, stderr=subprocess.STDOUT
            )
        wait_until(self._ready, timeout, f"the engine on port {self.port}")
        log.info("engine pid %d serves %s", self.pid, self.url)

    def stop(self) -> None:
        """Stop the JVM that this object started."""
        if self.process is not None:
            stop_process(self.process, "engine", timeout=30)

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"the engine exited early; see {self.log_path}")
        return answers(f"{self.url}/engine")


class Gateway:
    """One `gateway serve` (a gunicorn master and its workers)."""

    def __init__(
        self,
        name: str,
        root: Path,
        database_url: str,
        engine_url: str,
        extra_env: dict[str, str],
    ) -> None:
        self.name = name
        self.port = free_port()
        self.log_path = root / f"gateway-{name}.log"
        self.env = {
            **os.environ,
            "GATEWAY_DATABASE_URL": database_url,
            "GATEWAY_ENGINE_URL": engine_url,
            "GATEWAY_PORT": str(self.port),
            "GATEWAY_LOG_LEVEL": "WARNING",
            "GATEWAY_GRACE_PERIOD": "5",
            **extra_env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self._workers: list[int] = []

    @property
    def url(self) -> str:
        """Return the gateway's base URL (without the engine-rest path)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """Return the gunicorn master's pid."""
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 60) -> None:
        """Start gunicorn and wait until /healthz answers and every worker runs."""
        with self.log_path.open("ab") as output:
            self.process = subprocess.Popen(  # noqa: S603 -- our own command line
                [GATEWAY, "serve"],
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        expected = int(self.env.get("GATEWAY_WORKERS", "2"))
        wait_until(
            lambda: self._ready(expected),
            timeout,
            f"gateway {self.name} on {self.port}",
        )
        self._workers = self.worker_pids()
        log.info(
            "gateway %s: master %d, workers %s", self.name, self.pid, self._workers
        )

    def worker_pids(self) -> list[int]:
        """Return the pids of the master's live workers."""
        return procfs.children_of(self.pid) if self.process is not None else []

    def stop(self) -> None:
        """Stop the master gracefully; kill it and its own workers if it hangs."""
        if self.process is None:
            return
        workers = self._workers or self.worker_pids()
        stop_process(self.process, f"gateway {self.name}", timeout=30)
        for pid in workers:
            # a worker left behind by a killed master is still ours to end
            if procfs.is_alive(pid) and procfs.parent_of(pid) in (self.pid, 1):
                os.kill(pid, signal.SIGKILL)

    def _ready(self, workers: int) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"gateway {self.name} exited; see {self.log_path}")
        return answers(f"{self.url}/healthz") and len(self.worker_pids()) >= workers
