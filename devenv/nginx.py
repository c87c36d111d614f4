"""Debian's nginx for the load-balancer tests and the benchmark's engine stub."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def find_nginx() -> str | None:
    """Return the nginx executable, if it is installed."""
    found = shutil.which("nginx")
    if found is None and Path("/usr/sbin/nginx").exists():
        return "/usr/sbin/nginx"
    return found


def config(root: Path, worker_connections: int, http: str) -> str:
    """Return an nginx.conf that keeps every file it writes under `root`."""
    # as root, workers would switch to an account that can't use this folder
    user = "user root;" if os.geteuid() == 0 else ""
    return f"""
{user}
daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections {worker_connections}; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
{http}
}}
"""
