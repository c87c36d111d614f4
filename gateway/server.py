"""Run the gateway under gunicorn, configured by `gateway.gunicorn_conf`."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication


class GatewayServer(BaseApplication):  # type: ignore[misc]
    """A gunicorn application whose settings come from the gateway's environment."""

    def load_config(self) -> None:
        """Load the settings module, the way `gunicorn -c python:...` would."""
        self.load_config_from_module_name_or_filename("python:gateway.gunicorn_conf")

    def load(self) -> Any:
        """Build the app in the worker, after the fork."""
        # importing builds the app, which must happen after the fork
        from gateway.wsgi import app  # noqa: PLC0415

        return app
