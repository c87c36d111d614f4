"""Start every server of one pinning mode, and stop exactly those again.

One stack is PostgreSQL, the engine, the engine stub and five gateways: one in
front of the engine, one in front of it with the replay authorization check off,
one with the check on but its cache of the engine's answers off, and one in
front of the stub. All of them share the one reservations table.

The engine keeps its data in H2 in memory, as in the tests. A second engine
keeps its data in a PostgreSQL cluster of its own, as production engines do,
and the fifth gateway fronts it: an in-memory engine is several times faster
than one on a real database, so it flatters what the gateway costs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from pathlib import Path

from bench.pinning import Pinning
from bench.pinning import affinity_of
from bench.pinning import launched_on
from bench.servers import Database
from bench.servers import Engine
from bench.servers import EngineDatabase
from bench.servers import Gateway
from bench.settings import BenchSettings
from bench.stub import EngineStub

log = logging.getLogger(__name__)

ENGINE_GATEWAY = "engine"
NO_CHECK_GATEWAY = "engine-nocheck"
NO_CACHE_GATEWAY = "engine-nocache"
STUB_GATEWAY = "stub"
ENGINE_ON_POSTGRES_GATEWAY = "engine-pg"


@dataclasses.dataclass(frozen=True)
class Stack:
    """The running servers of one pinning mode."""

    pinning: Pinning
    database: Database
    engine: Engine
    engine_on_postgres: Engine
    engine_database: EngineDatabase
    stub: EngineStub
    gateways: dict[str, Gateway]

    def roots(self) -> dict[str, list[int]]:
        """Return the root pids of each component, for CPU accounting."""
        return {
            "gateway": [gateway.pid for gateway in self.gateways.values()],
            "postgres": [self.database.pid],
            "engine": [self.engine.pid],
            "engine_pg": [self.engine_on_postgres.pid],
            "engine_postgres": [self.engine_database.pid],
            "stub": [self.stub.pid],
        }

    def affinities(self) -> dict[str, list[int] | None]:
        """Return the CPUs each server may use, as the kernel sees it."""
        found = {
            "postgres": affinity_of(self.database.pid),
            "engine": affinity_of(self.engine.pid),
            "engine_pg": affinity_of(self.engine_on_postgres.pid),
            "engine_postgres": affinity_of(self.engine_database.pid),
            "stub": affinity_of(self.stub.pid),
        }
        for name, gateway in self.gateways.items():
            found[f"gateway-{name}"] = affinity_of(gateway.pid)
        return found


def gateway_workers(settings: BenchSettings, pinning: Pinning) -> int:
    """Return the worker count: as configured, or one per CPU the gateway may use."""
    # more workers than CPUs only take turns on them, and pay for switching
    return settings.gateway_workers or len(pinning.others)


def start_stack(
    settings: BenchSettings, pinning: Pinning, root: Path, stop: contextlib.ExitStack
) -> Stack:
    """Start the servers; each one's stop is registered on `stop` once it runs."""
    database = Database(root / "db", settings.durable)
    with launched_on(pinning.others):
        stop.callback(database.stop)
        database.start()
    engine = Engine(root / "engine.log", settings.engine_heap)
    engine_database = EngineDatabase(root / "engine-db")
    engine_on_postgres = Engine(
        root / "engine-pg.log", settings.engine_heap, engine_database
    )
    with launched_on(pinning.engine):
        stop.callback(engine.stop)
        engine.start()
        stop.callback(engine_database.stop)
        engine_database.start()
        stop.callback(engine_on_postgres.stop)
        engine_on_postgres.start()
    stub = EngineStub(root / "stub")
    gateway_env = {
        "GATEWAY_WORKERS": str(gateway_workers(settings, pinning)),
        "GATEWAY_THREADS": str(settings.gateway_threads),
        "GATEWAY_WORKER_CLASS": settings.gateway_worker_class,
    }
    gateways = {
        ENGINE_GATEWAY: Gateway(
            ENGINE_GATEWAY, root, database.url, engine.url, gateway_env
        ),
        NO_CHECK_GATEWAY: Gateway(
            NO_CHECK_GATEWAY,
            root,
            database.url,
            engine.url,
            {**gateway_env, "GATEWAY_REPLAY_AUTHORIZATION": "false"},
        ),
        NO_CACHE_GATEWAY: Gateway(
            NO_CACHE_GATEWAY,
            root,
            database.url,
            engine.url,
            {**gateway_env, "GATEWAY_REPLAY_AUTHORIZATION_CACHE": "0"},
        ),
        STUB_GATEWAY: Gateway(STUB_GATEWAY, root, database.url, stub.url, gateway_env),
        ENGINE_ON_POSTGRES_GATEWAY: Gateway(
            ENGINE_ON_POSTGRES_GATEWAY,
            root,
            database.url,
            engine_on_postgres.url,
            gateway_env,
        ),
    }
    with launched_on(pinning.others):
        stop.callback(stub.stop)
        stub.start()
        for gateway in gateways.values():
            stop.callback(gateway.stop)
            gateway.start()
    stack = Stack(
        pinning, database, engine, engine_on_postgres, engine_database, stub, gateways
    )
    log.info("%s stack is up: %s", pinning.name, stack.affinities())
    return stack
