"""Run the gateway under gunicorn, configured by `gateway.gunicorn_conf`."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from gateway import gunicorn_conf


class GatewayServer(BaseApplication):  # type: ignore[misc]
    """A gunicorn application whose settings come from the gateway's environment."""

    def load_config(self) -> None:
        """Apply every gunicorn setting and hook that the config module defines."""
        for name, value in vars(gunicorn_conf).items():
            if name in self.cfg.settings and value is not None:
                self.cfg.set(name, value)

    def load(self) -> Any:
        """Build the app in the worker, after the fork."""
        # importing builds the app, which must happen after the fork
        from gateway.wsgi import app  # noqa: PLC0415

        return app
