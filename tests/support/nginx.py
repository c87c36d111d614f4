"""A real nginx (Debian's package) balancing round-robin over gateway replicas."""

from __future__ import annotations

import subprocess
from pathlib import Path

from devenv import nginx
from devenv.ports import free_port
from devenv.ports import is_listening
from devenv.ports import wait_until


class Nginx:
    """One nginx master on a free loopback port, configured for the given upstreams."""

    def __init__(self, upstream_ports: list[int], root: Path) -> None:
        self.port = free_port()
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.config = self.root / "nginx.conf"
        self.config.write_text(self._render(upstream_ports))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Nginx:
        binary = nginx.find_nginx()
        assert binary is not None
        self.process = subprocess.Popen(
            [binary, "-p", str(self.root), "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "stderr.log").open("ab"),
        )
        wait_until(lambda: is_listening(self.port), 30, f"nginx on port {self.port}")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def _render(self, ports: list[int]) -> str:
        servers = "\n".join(f"        server 127.0.0.1:{port};" for port in ports)
        return nginx.config(
            self.root,
            worker_connections=2048,
            http=f"""
    upstream gateways {{
{servers}
        keepalive 64;
        # below the gateway's own keep-alive, so nginx drops idle ones first
        keepalive_timeout 30s;
    }}
    server {{
        listen 127.0.0.1:{self.port};
        location / {{
            proxy_pass http://gateways;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            # as deploy/nginx.conf: the balancer, not the client, names the host
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Port "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 120s;
            add_header X-Served-By $upstream_addr always;
        }}
    }}""",
        )
