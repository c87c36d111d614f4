"""Build the store, the engine client and the start logic from the settings."""

from __future__ import annotations

import dataclasses

from gateway.auth import ApiKeys
from gateway.config import Settings
from gateway.engine import EngineClient
from gateway.starts import StartService
from gateway.store import ReservationStore


@dataclasses.dataclass(frozen=True)
class Services:
    """What the routes and the commands need, built once per process."""

    settings: Settings
    store: ReservationStore
    engine: EngineClient
    starts: StartService
    api_keys: ApiKeys


def build_services(settings: Settings) -> Services:
    """Wire the gateway's parts together and open the database pool."""
    store = ReservationStore(
        settings.require_database_url(), settings.db_pool_size, settings.db_pool_timeout
    )
    engine = EngineClient(settings)
    store.open()
    starts = StartService(settings, store, engine)
    return Services(settings, store, engine, starts, ApiKeys(settings.api_keys))
