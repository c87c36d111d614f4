"""A throwaway PostgreSQL cluster from the locally installed server binaries."""

from __future__ import annotations

import glob
import logging
import os
import pwd
import shutil
import subprocess
from pathlib import Path

import psycopg

from devenv.ports import wait_until

log = logging.getLogger(__name__)

SUPERUSER = "gateway"


def find_bindir() -> Path:
    """Return the directory of initdb and pg_ctl."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for directory in candidates:
        if Path(directory, "initdb").exists():
            return Path(directory)
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise FileNotFoundError("no PostgreSQL server binaries (initdb) are installed")


class LocalPostgres:
    """Create, start and stop a PostgreSQL cluster in a folder of its own."""

    def __init__(self, root: Path, port: int, durable: bool = True) -> None:
        self.root = root
        self.data = root / "data"
        self.port = port
        self.durable = durable
        self.bindir = find_bindir()
        # the server refuses to run as root, so a root caller runs it as postgres
        self.run_as = "postgres" if os.geteuid() == 0 else None

    def url(self, database: str = "postgres") -> str:
        """Return the URL of one database of this cluster."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    @property
    def pid(self) -> int:
        """Return the running postmaster's pid, the first line of its pid file."""
        pid_file = self.data / "postmaster.pid"
        return int(pid_file.read_text().split("\n", 1)[0])

    def start(self) -> None:
        """Initialise the cluster if needed, then start it and wait for it."""
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        if not self.durable:
            # a test cluster is thrown away, so it need not survive a crash
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._pg_ctl(
            "start",
            "-w",
            "-t",
            "60",
            "-l",
            str(self.root / "server.log"),
            "-o",
            options,
        )
        wait_until(self.is_ready, 60, f"PostgreSQL on port {self.port}")
        log.info("PostgreSQL is ready on port %d", self.port)

    def stop(self) -> None:
        """Stop the cluster, cutting off its clients."""
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("stop", "-w", "-m", "fast")

    def is_ready(self) -> bool:
        """Tell whether the server accepts connections."""
        try:
            with psycopg.connect(self.url(), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def create_database(self, name: str) -> str:
        """Create a database and return its URL."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(
                f'CREATE DATABASE "{name}"'
            )  # names come from the caller's code
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, ending its connections."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _initdb(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        )

    def _pg_ctl(self, *args: str) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), *args)

    def _run(self, *command: str) -> None:
        program = Path(command[0]).name
        if self.run_as:
            command = ("runuser", "-u", self.run_as, "--", *command)
        done = subprocess.run(command, capture_output=True, timeout=120, check=False)
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace").strip()
            raise RuntimeError(f"{program} failed ({done.returncode}): {output}")
