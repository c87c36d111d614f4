"""Run a gateway app on a real HTTP server in a background thread."""

from __future__ import annotations

import threading

from flask import Flask
from werkzeug.serving import BaseWSGIServer
from werkzeug.serving import make_server


class ThreadedServer:
    """A threaded werkzeug server for one app, on a free loopback port."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def start(self) -> ThreadedServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()
