"""`make run`: PostgreSQL and the engine if none are configured, then the gateway.

An unset GATEWAY_DATABASE_URL starts a local PostgreSQL cluster kept in `.run/`,
and an unset GATEWAY_ENGINE_URL starts the bundled Operaton engine on
127.0.0.1:8080. Both stop again when the gateway does.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg

from devenv.engine import EngineProcess
from devenv.ports import is_listening
from devenv.ports import wait_until
from devenv.postgres import LocalPostgres

log = logging.getLogger("devenv.run")

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".run"
POSTGRES_PORT = 54329
ENGINE_PORT = 8080


def main() -> int:
    """Start what is missing, migrate, and serve the gateway in the foreground."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    STATE.mkdir(exist_ok=True)
    env = dict(os.environ)
    postgres = engine = None
    try:
        if not env.get("GATEWAY_DATABASE_URL"):
            postgres = _start_postgres()
            env["GATEWAY_DATABASE_URL"] = postgres.url("gateway")
        if not env.get("GATEWAY_ENGINE_URL"):
            engine = _start_engine()
            env["GATEWAY_ENGINE_URL"] = engine.url
        gateway = [str(Path(sys.executable).parent / "gateway")]
        subprocess.run([*gateway, "migrate"], env=env, check=True)
        return _serve([*gateway, "serve"], env)
    finally:
        if engine is not None:
            engine.stop()
        if postgres is not None:
            postgres.stop()


def _start_postgres() -> LocalPostgres:
    root = STATE / "postgres"
    root.mkdir(exist_ok=True)
    root.chmod(0o755)
    postgres = LocalPostgres(root, POSTGRES_PORT)
    if is_listening(POSTGRES_PORT):
        raise SystemExit(
            f"port {POSTGRES_PORT} is taken; set GATEWAY_DATABASE_URL instead"
        )
    postgres.start()
    if not _database_exists(postgres):
        postgres.create_database("gateway")
    return postgres


def _database_exists(postgres: LocalPostgres) -> bool:
    with psycopg.connect(postgres.url()) as conn:
        row = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = 'gateway'"
        ).fetchone()
    return row is not None


def _start_engine() -> EngineProcess:
    if is_listening(ENGINE_PORT):
        raise SystemExit(f"port {ENGINE_PORT} is taken; set GATEWAY_ENGINE_URL instead")
    engine = EngineProcess("operaton", ENGINE_PORT, STATE / "engine.log")
    log.info("starting the bundled Operaton engine (log in %s)", engine.log_path)
    engine.start()
    return engine


def _print_usage(env: dict[str, str]) -> None:
    host = env.get("GATEWAY_HOST", "127.0.0.1")
    port = env.get("GATEWAY_PORT", "8000")
    base = f"http://{host}:{port}/engine-rest"
    print(
        f"""
The gateway listens on {base} in front of {env["GATEWAY_ENGINE_URL"]}.
Start an instance, then send the same request again to get it replayed:

  curl -i -X POST {base}/process-definition/key/gateway-waiting/start \\
       -H 'Content-Type: application/json' -d '{{"businessKey": "order-1"}}'
""",
        flush=True,
    )


def _serve(command: list[str], env: dict[str, str]) -> int:
    process = subprocess.Popen(command, env=env)
    # Ctrl-C reaches the gateway too; wait for it to finish its own shutdown
    signal.signal(signal.SIGINT, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: process.terminate())

    # the example is only worth printing once it works as printed
    port = int(env.get("GATEWAY_PORT", "8000"))
    host = env.get("GATEWAY_HOST", "127.0.0.1")
    probe = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
    wait_until(
        lambda: process.poll() is not None or is_listening(port, probe),
        60,
        f"the gateway on port {port}",
    )
    if process.poll() is None:
        _print_usage(env)
    return process.wait()


if __name__ == "__main__":
    sys.exit(main())
