"""The Flask app factory."""

from __future__ import annotations

import logging

from flask import Flask

from gateway.config import Settings
from gateway.config import load_settings
from gateway.engine import EngineClient
from gateway.responses import register_error_handlers
from gateway.routes import Services
from gateway.routes import create_blueprint
from gateway.starts import StartService
from gateway.store import ReservationStore

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Flask:
    """Create and configure the app."""
    settings = settings or load_settings()
    store = ReservationStore(
        settings.require_database_url(), settings.db_pool_size, settings.db_pool_timeout
    )
    engine = EngineClient(settings)
    store.open()

    app = Flask(__name__)
    # a doubled slash must reach pass-through unchanged, not be redirected
    app.url_map.merge_slashes = False
    app.extensions["gateway"] = Services(
        settings=settings,
        store=store,
        engine=engine,
        starts=StartService(settings, store, engine),
    )
    app.register_blueprint(create_blueprint(settings.base_path))
    register_error_handlers(app)

    log.info("gateway ready in front of %s", settings.engine_base)
    return app
