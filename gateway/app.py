"""The Flask app factory."""

from __future__ import annotations

import logging

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from gateway import tracing
from gateway.config import Settings
from gateway.config import load_settings
from gateway.responses import register_error_handlers
from gateway.routes import create_blueprint
from gateway.services import build_services

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Flask:
    """Create and configure the app."""
    settings = settings or load_settings()

    app = Flask(__name__)
    # a doubled slash must reach pass-through unchanged, not be redirected
    app.url_map.merge_slashes = False
    app.extensions["gateway"] = build_services(settings)
    app.register_blueprint(create_blueprint(settings.base_path))
    register_error_handlers(app)
    tracing.install(app)
    if settings.trusted_proxies:
        # X-Forwarded-* are believed only from as many proxies as configured;
        # anything a client adds in front of them is ignored
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n
        )

    log.info("gateway ready in front of %s", settings.engine_base)
    return app
