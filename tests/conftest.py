"""Shared fixtures: a throwaway database, the real engine and a running gateway.

PostgreSQL comes from testcontainers when a Docker engine answers, and from the
locally installed server otherwise. The engine is the Maven-built Spring Boot
app in `engine/`, Operaton unless ENGINE_FLAVOR says camunda.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from bench.stub import EngineStub
from devenv.engine import EngineProcess
from devenv.ports import free_port
from devenv.ports import wait_until
from devenv.postgres import LocalPostgres
from gateway import schema
from gateway.app import create_app
from gateway.config import Settings
from gateway.logs import JsonFormatter
from gateway.store import ReservationStore
from tests.support.proxy import EngineProxy
from tests.support.servers import ThreadedServer

log = logging.getLogger(__name__)

TEST_DATABASE_PREFIX = "gateway_test_"


def docker_available() -> bool:
    """Tell whether a Docker engine answers, for testcontainers."""
    try:
        from testcontainers.core.docker_client import DockerClient

        DockerClient().client.ping()
    except Exception:
        return False
    return True


class PostgresServer:
    """The PostgreSQL server of a test session, local or in a container."""

    def __init__(self, tmp: Path) -> None:
        self.local: LocalPostgres | None = None
        self.container: Any = None
        if (
            os.environ.get("GATEWAY_TEST_DOCKER", "auto") != "off"
            and docker_available()
        ):
            from testcontainers.postgres import PostgresContainer

            self.container = PostgresContainer("postgres:16-alpine", driver=None)
            self.container.start()
            self.admin_url = self.container.get_connection_url()
        else:
            # not under pytest's own temp folder: a root run hands the cluster to
            # the postgres user, who can't enter folders private to root
            root = Path(tempfile.mkdtemp(prefix="gateway-test-pg-"))
            root.chmod(0o755)
            self.root: Path | None = root
            self.local = LocalPostgres(root, free_port(), durable=False)
            self.local.start()
            self.admin_url = self.local.url()

    def url(self, database: str) -> str:
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{database}"

    def create_database(self, name: str) -> str:
        assert name.startswith(TEST_DATABASE_PREFIX)
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        assert name.startswith(TEST_DATABASE_PREFIX)
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.local is not None:
            self.local.stop()
            shutil.rmtree(self.root or "", ignore_errors=True)
        if self.container is not None:
            self.container.stop()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path_factory.mktemp("pg"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_url(postgres: PostgresServer) -> Iterator[str]:
    """Create a fresh database for this run and upgrade it to head."""
    name = f"{TEST_DATABASE_PREFIX}{uuid.uuid4().hex[:12]}"
    url = postgres.create_database(name)
    # refuse to touch any database that this session did not just create
    assert url.rsplit("/", 1)[1] == name
    schema.upgrade(url)
    yield url
    postgres.drop_database(name)


@pytest.fixture
def empty_database(postgres: PostgresServer) -> Iterator[str]:
    """Create a database of its own for one test, with no schema in it."""
    name = f"{TEST_DATABASE_PREFIX}{uuid.uuid4().hex[:12]}"
    url = postgres.create_database(name)
    yield url
    postgres.drop_database(name)


@pytest.fixture
def own_database(empty_database: str) -> str:
    """Create a database at head that holds only one test's reservations."""
    schema.upgrade(empty_database)
    return empty_database


@pytest.fixture
def own_store(own_database: str) -> Iterator[ReservationStore]:
    """A reservation store on the test's own database."""
    store = ReservationStore(own_database, pool_size=4, pool_timeout=5)
    store.open()
    yield store
    store.close()


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[EngineStub]:
    """The benchmark's instant engine stub, for the benchmark's own tests."""
    server = EngineStub(tmp_path / "stub")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    flavour = os.environ.get("ENGINE_FLAVOR", "operaton")
    logs = tmp_path_factory.mktemp("engine") / f"{flavour}.log"
    process = EngineProcess(flavour, free_port(), logs)
    process.start()
    process.warm_up()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def engine_url(engine: EngineProcess) -> str:
    return engine.url


@pytest.fixture(scope="session")
def engine_http(engine_url: str) -> Iterator[httpx.Client]:
    """A client that talks to the engine directly, to count what it holds."""
    with httpx.Client(base_url=engine_url, timeout=30) as client:
        yield client


@pytest.fixture
def proxy(engine_url: str) -> Iterator[EngineProxy]:
    """A recording, fault-injecting proxy in front of the real engine."""
    server = EngineProxy(engine_url).start()
    yield server
    server.stop()


@dataclasses.dataclass
class RunningGateway:
    server: ThreadedServer
    settings: Settings

    @property
    def url(self) -> str:
        return self.server.url

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=f"{self.url}/engine-rest", timeout=60)


@pytest.fixture(scope="session")
def start_gateway(
    database_url: str, engine_url: str
) -> Iterator[Callable[..., RunningGateway]]:
    """Return a factory that serves a gateway app with some settings changed."""
    running: list[RunningGateway] = []

    def start(**overrides: Any) -> RunningGateway:
        settings = dataclasses.replace(
            Settings(
                database_url=database_url, engine_url=engine_url, inflight_wait=10
            ),
            **overrides,
        )
        gateway = RunningGateway(ThreadedServer(create_app(settings)).start(), settings)
        running.append(gateway)
        return gateway

    yield start
    for gateway in running:
        gateway.server.stop()
        gateway.server.app.extensions["gateway"].store.close()


@pytest.fixture
def stub_gateway(
    stub: EngineStub, start_gateway: Callable[..., RunningGateway]
) -> RunningGateway:
    """A gateway in front of the benchmark's stub, for the benchmark's own tests."""
    # the stub can't read instances, so replays skip the authorization check
    return start_gateway(engine_url=stub.url, replay_authorization=False)


@pytest.fixture(scope="session")
def gateway(start_gateway: Callable[..., RunningGateway]) -> RunningGateway:
    return start_gateway()


@pytest.fixture
def client(gateway: RunningGateway) -> Iterator[httpx.Client]:
    with gateway.client() as http:
        yield http


@pytest.fixture
def business_key() -> str:
    return f"order-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def count_instances(engine_http: httpx.Client) -> Callable[[str], int]:
    """Count the engine's instances with a businessKey, running or ended."""

    def count(business_key: str) -> int:
        answer = engine_http.get(
            "/history/process-instance/count",
            params={"processInstanceBusinessKey": business_key},
        )
        answer.raise_for_status()
        return int(answer.json()["count"])

    return count


@pytest.fixture
def reservations(database_url: str) -> Callable[[str], list[dict[str, Any]]]:
    """Read the reservation rows of a businessKey straight from the database."""

    def read(business_key: str) -> list[dict[str, Any]]:
        with psycopg.connect(database_url) as conn:
            cur = conn.execute(
                "SELECT engine_name, tenant_id, process_definition_key, state, attempt,"
                " process_instance_id FROM reservations WHERE business_key = %s",
                (business_key,),
            )
            names = [column.name for column in cur.description or []]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    return read


@pytest.fixture
def proxied_gateway(
    proxy: EngineProxy, start_gateway: Callable[..., RunningGateway]
) -> RunningGateway:
    """A gateway whose engine calls all go through the recording proxy."""
    return start_gateway(engine_url=proxy.url, max_body_bytes=4096)


@pytest.fixture
def wait_for_lease_expiry(database_url: str) -> Callable[[str], None]:
    """Wait until the pending reservation of a businessKey has an expired lease."""

    def expired(business_key: str) -> bool:
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "SELECT lease_expires_at <= now() FROM reservations"
                " WHERE business_key = %s AND state = 'pending'",
                (business_key,),
            ).fetchone()
        return bool(row and row[0])

    def wait(business_key: str) -> None:
        wait_until(lambda: expired(business_key), 30, f"the lease of {business_key}")

    return wait


@pytest.fixture
def engine_instances(engine_http: httpx.Client) -> Callable[[str], list[str]]:
    """List the ids of the engine's instances with a businessKey."""

    def ids(business_key: str) -> list[str]:
        answer = engine_http.get(
            "/history/process-instance",
            params={"processInstanceBusinessKey": business_key},
        )
        answer.raise_for_status()
        return [item["id"] for item in answer.json()]

    return ids


# The lease must outlast the engine's own work on a start the gateway gave up
# on; on a loaded 2-core machine a cold engine can take seconds, and a shorter
# lease than this made a retry forward a start the engine was still running.
TEST_LEASE = 6.0
FAULT_SETTINGS = {"engine_timeout": 1.0, "lease": TEST_LEASE, "inflight_wait": 0.3}


def fault_replica_env(database_url: str, engine_url: str) -> dict[str, str]:
    """Return the environment of a `gateway serve` replica with FAULT_SETTINGS."""
    return {
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_ENGINE_URL": engine_url,
        "GATEWAY_ENGINE_TIMEOUT": str(FAULT_SETTINGS["engine_timeout"]),
        "GATEWAY_LEASE": str(FAULT_SETTINGS["lease"]),
        "GATEWAY_INFLIGHT_WAIT": str(FAULT_SETTINGS["inflight_wait"]),
        "GATEWAY_WORKERS": "1",
        "GATEWAY_THREADS": "4",
    }


@pytest.fixture
def faulty_gateway(
    proxy: EngineProxy, start_gateway: Callable[..., RunningGateway]
) -> RunningGateway:
    """A gateway with short timeouts whose engine calls go through the fault proxy."""
    return start_gateway(engine_url=proxy.url, **FAULT_SETTINGS)


# the users of the engine's `auth` profile, and every form their secrets could take
ENGINE_USERS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}
# the callers and keys of the gateway's own authentication in its tests
GATEWAY_API_KEYS = {
    "app-one": "key-one-0123456789abcdef",
    "app-two": "key-two-0123456789abcdef",
}


@pytest.fixture(scope="session")
def auth_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    """The engine with HTTP basic authentication and authorization switched on."""
    flavour = os.environ.get("ENGINE_FLAVOR", "operaton")
    logs = tmp_path_factory.mktemp("auth-engine") / f"{flavour}-auth.log"
    process = EngineProcess(flavour, free_port(), logs, profiles=("auth",))
    process.start()
    yield process
    process.stop()


# the in-process loggers that see requests: the gateway's own, the server that
# receives them and the connection pool that sends them on to the engine
CAPTURED_LOGGERS = {
    "gateway": logging.DEBUG,
    "werkzeug": logging.INFO,
    "urllib3": logging.DEBUG,
}


@pytest.fixture(scope="session", autouse=True)
def gateway_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Write every log record of in-process gateways to a file, as JSON.

    It is there from the start of the session, so the file holds the records of
    every test module, in the form a replica with GATEWAY_LOG_FORMAT=json writes.
    """
    path = tmp_path_factory.mktemp("gateway-log") / "gateway.jsonl"
    handler = logging.FileHandler(path)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    levels = {name: logging.getLogger(name).level for name in CAPTURED_LOGGERS}
    for name, level in CAPTURED_LOGGERS.items():
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(level)
    yield path
    for name, level in levels.items():
        logging.getLogger(name).removeHandler(handler)
        logging.getLogger(name).setLevel(level)
    handler.close()


def credential_forms() -> list[bytes]:
    """Return the test secrets as they could appear: plain or in a basic header."""
    # the gateway's API keys travel as X-API-Key or a bearer token, never in basic
    forms = [key.encode() for key in GATEWAY_API_KEYS.values()]
    for user, password in ENGINE_USERS.items():
        forms.append(password.encode())
        forms.append(base64.b64encode(f"{user}:{password}".encode()))
    return forms


@pytest.fixture(scope="session", autouse=True)
def no_credentials_left_behind(
    tmp_path_factory: pytest.TempPathFactory, gateway_log: Path, database_url: str
) -> Iterator[None]:
    """After the whole run, grep every log and the database for the test credentials.

    Every log of the run sits under the session's base temp folder: the file of
    `gateway_log`, the engines' logs, and the logs of the `gateway serve`
    replicas and of nginx, which tests keep in their `tmp_path`. Its teardown
    comes after every test and before the database is dropped.
    """
    yield
    forms = credential_forms()
    leaks = [
        str(path)
        for path in tmp_path_factory.getbasetemp().rglob("*")
        if path.is_file() and _contains_any(path, forms)
    ]
    leaks += _leaking_reservations(database_url, forms)

    assert leaks == [], f"test credentials found in: {leaks}"
    # an empty log would pass any grep; the schema upgrade alone writes a line
    assert gateway_log.stat().st_size > 0, f"{gateway_log} recorded nothing"


def _leaking_reservations(database_url: str, forms: list[bytes]) -> list[str]:
    """Name the reservations whose row, any column of it, holds a secret."""
    # a bytea column shows as hex in the row's text, so look for that form too
    wanted = [*forms, *(form.hex().encode() for form in forms)]
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT r.business_key, r::text FROM reservations r"
        ).fetchall()
    return [
        f"the reservation of businessKey {business_key!r}"
        for business_key, text in rows
        if any(form in text.encode() for form in wanted)
    ]


def _contains_any(path: Path, forms: list[bytes]) -> bool:
    """Tell whether a file holds any of the forms, reading it a chunk at a time."""
    # keep the end of each chunk, so a form split across two chunks is found
    overlap = max(len(form) for form in forms) - 1
    tail = b""
    try:
        with path.open("rb") as file:
            while chunk := file.read(1 << 20):
                window = tail + chunk
                if any(form in window for form in forms):
                    return True
                tail = window[len(window) - overlap :]
    except OSError:
        return False
    return False
