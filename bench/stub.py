"""An instant engine stub: nginx answering starts like the engine, from memory.

The stub exists only in the benchmark. It never reads the request body, keeps
no state and answers every start with a new instance id ($request_id), so it is
never the bottleneck: what remains is the gateway's own cost.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

from bench.servers import stop_process
from devenv import nginx
from devenv.ports import free_port
from devenv.ports import is_listening
from devenv.ports import wait_until

log = logging.getLogger(__name__)

_START = r"^/engine-rest(/engine/[^/]+)?/process-definition/.+/start$"


def nginx_binary() -> str:
    """Return Debian's nginx, which the benchmark setup installs."""
    found = nginx.find_nginx()
    if found is None:
        raise SystemExit("nginx is missing: apt-get install nginx-light")
    return found


def start_answer(base: str) -> str:
    """Return the engine's answer to a start, with nginx variables for the id."""
    instance = f"{base}/process-instance/$request_id"
    return (
        '{"links":[{"method":"GET","href":"' + instance + '","rel":"self"}],'
        '"id":"$request_id",'
        '"definitionId":"gateway-waiting:1:00000000-0000-0000-0000-000000000000",'
        '"businessKey":null,"caseInstanceId":null,"ended":false,'
        '"suspended":false,"tenantId":null,"definitionKey":"gateway-waiting"}'
    )


class EngineStub:
    """One nginx master with one worker on a free loopback port."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.root.mkdir(parents=True, exist_ok=True)
        self.config = root / "nginx.conf"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Return the stub's REST base URL, as the gateway's GATEWAY_ENGINE_URL."""
        return f"http://127.0.0.1:{self.port}/engine-rest"

    @property
    def pid(self) -> int:
        """Return the nginx master's pid."""
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        """Write the configuration, start nginx and wait until it listens."""
        self.config.write_text(self._render())
        command = [nginx_binary(), "-p", str(self.root), "-c", str(self.config)]
        command += ["-e", str(self.root / "error.log")]
        with (self.root / "stderr.log").open("ab") as output:
            self.process = subprocess.Popen(  # noqa: S603 -- our own command line
                command, stdout=output, stderr=subprocess.STDOUT
            )
        wait_until(self._ready, 30, f"the engine stub on port {self.port}")
        log.info("engine stub pid %d serves %s", self.pid, self.url)

    def stop(self) -> None:
        """Stop the nginx master that this object started."""
        if self.process is not None:
            stop_process(self.process, "engine stub", timeout=10)

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"nginx exited; see {self.root / 'stderr.log'}")
        return is_listening(self.port)

    def _render(self) -> str:
        return nginx.config(
            self.root,
            worker_connections=4096,
            http=f"""
    # the gateway keeps its engine connections open; never make it reconnect
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    server {{
        listen 127.0.0.1:{self.port} backlog=1024;
        location ~ {_START} {{
            default_type application/json;
            return 200 '{start_answer(self.url)}';
        }}
        location = /engine-rest/engine {{
            default_type application/json;
            return 200 '[{{"name":"default"}}]';
        }}
        location / {{
            default_type application/json;
            return 404 '{{"type":"InvalidRequestException","message":"stub"}}';
        }}
    }}""",
        )
