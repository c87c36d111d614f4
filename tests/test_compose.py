"""The compose file's nginx.conf, run by a real nginx in front of two gateways.

No Docker engine runs here, so compose itself can't start. What compose would
add, names for its services, comes from a hosts file that only nginx sees: it
runs in a mount namespace of its own, with that file bound over /etc/hosts.
Each gateway service name maps to a loopback address of its own, where a real
`gateway serve` listens with the environment that compose.yaml gives it.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from devenv.nginx import find_nginx
from devenv.ports import free_port
from devenv.ports import is_listening
from devenv.ports import wait_until
from gateway.config import load_settings
from tests.support.metrics import sample_value
from tests.support.replica import Replica

ROOT = Path(__file__).resolve().parent.parent
START = "/engine-rest/process-definition/key/gateway-waiting/start"
# where compose mounts the balancer's configuration
NGINX_CONF = "/etc/nginx/nginx.conf"
_UPSTREAM = re.compile(r"^\s*server\s+([\w.-]+):(\d+);", re.MULTILINE)
_LISTEN = re.compile(r"^(\s*)listen 80;$", re.MULTILINE)


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return document


def mounted_nginx_conf(services: dict[str, Any]) -> Path:
    """Return the file that compose mounts as the balancer's nginx.conf."""
    for volume in services["nginx"]["volumes"]:
        source, target, *_ = volume.split(":")
        if target == NGINX_CONF:
            return (ROOT / source).resolve()
    raise AssertionError(f"compose mounts nothing at {NGINX_CONF}")


def test_the_balancer_publishes_its_listening_port_and_balances_every_gateway() -> None:
    services = compose()["services"]
    conf = mounted_nginx_conf(services).read_text()

    assert services["nginx"]["ports"] == ["127.0.0.1:8000:80"]
    assert len(_LISTEN.findall(conf)) == 1
    gateways = sorted(name for name in services if name.startswith("gateway-"))
    assert sorted(host for host, _ in _UPSTREAM.findall(conf)) == gateways
    # every gateway listens on the port that the balancer sends to
    default_port = str(load_settings({}).port)
    for name, port in _UPSTREAM.findall(conf):
        assert services[name]["environment"].get("GATEWAY_PORT", default_port) == port


class ComposeBalancer:
    """Debian's nginx running the compose file's own nginx.conf."""

    def __init__(self, conf: Path, hosts: dict[str, str], root: Path) -> None:
        self.port = free_port()
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        # the one change: listen on a free loopback port instead of port 80
        text, count = _LISTEN.subn(
            rf"\1listen 127.0.0.1:{self.port};", conf.read_text()
        )
        assert count == 1
        self.conf = root / "nginx.conf"
        self.conf.write_text(text)
        self.hosts = root / "hosts"
        names = "".join(f"{address} {name}\n" for name, address in hosts.items())
        self.hosts.write_text("127.0.0.1 localhost\n" + names)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ComposeBalancer:
        binary = find_nginx()
        assert binary is not None, "nginx is missing; `make test` installs it"
        # the conf sets no pid file or error log, so keep them in the test folder
        run_nginx = (
            f"mount --bind {self.hosts} /etc/hosts && exec {binary}"
            f" -e {self.root}/error.log -c {self.conf}"
            f" -g 'daemon off; pid {self.root}/nginx.pid;'"
        )
        namespace = ["unshare", "--mount"]
        if os.geteuid() != 0:
            namespace.append("--map-root-user")
        self.process = subprocess.Popen(
            [*namespace, "sh", "-c", run_nginx],
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "stderr.log").open("ab"),
        )
        wait_until(self._listening, 30, f"nginx on port {self.port}")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def _listening(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            stderr = (self.root / "stderr.log").read_text()
            raise RuntimeError(f"nginx exited: {stderr}")
        return is_listening(self.port)


@pytest.fixture
def composed(
    database_url: str, engine_url: str, tmp_path: Path
) -> Iterator[tuple[ComposeBalancer, list[Replica]]]:
    services = compose()["services"]
    conf = mounted_nginx_conf(services)
    upstreams = _UPSTREAM.findall(conf.read_text())
    replicas = []
    for number, (name, port) in enumerate(upstreams, start=2):
        # the compose environment, pointed at this run's database and engine
        env = dict(services[name]["environment"])
        assert {"GATEWAY_DATABASE_URL", "GATEWAY_ENGINE_URL"} <= env.keys()
        env.update(GATEWAY_DATABASE_URL=database_url, GATEWAY_ENGINE_URL=engine_url)
        replica = Replica(env, tmp_path / f"{name}.log", f"127.0.0.{number}", int(port))
        replicas.append(replica.start())
    hosts = {
        name: replica.host
        for (name, _), replica in zip(upstreams, replicas, strict=True)
    }
    balancer = ComposeBalancer(conf, hosts, tmp_path / "nginx").start()
    yield balancer, replicas
    balancer.stop()
    for replica in replicas:
        replica.stop()


def test_compose_balancer_spreads_a_start_and_its_replays_over_both_gateways(
    composed: tuple[ComposeBalancer, list[Replica]],
    business_key: str,
    count_instances: Callable[[str], int],
) -> None:
    balancer, replicas = composed

    answers = [
        httpx.post(
            f"{balancer.url}{START}", json={"businessKey": business_key}, timeout=60
        )
        for _ in range(4)
    ]

    assert [answer.status_code for answer in answers] == [200] * 4
    assert [answer.headers["Idempotency-Status"] for answer in answers] == [
        "created",
        "replayed",
        "replayed",
        "replayed",
    ]
    assert len({answer.json()["id"] for answer in answers}) == 1
    assert count_instances(business_key) == 1
    # nginx passes the client's Host on, so links name the balancer's address
    for link in answers[0].json()["links"]:
        assert link["href"].startswith(f"{balancer.url}/engine-rest/")
    # round robin: each gateway answered two of the four
    served = [_starts_served(replica) for replica in replicas]
    assert served == [2.0, 2.0]


def test_compose_balancer_decides_the_host_that_links_name(
    composed: tuple[ComposeBalancer, list[Replica]], business_key: str
) -> None:
    balancer, _ = composed
    # the gateways believe one proxy's X-Forwarded-*, so these must not get past it
    spoofed = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Port": "6666"}

    answer = httpx.post(
        f"{balancer.url}{START}",
        json={"businessKey": business_key},
        headers=spoofed,
        timeout=60,
    )

    assert answer.status_code == 200, answer.text
    hrefs = [link["href"] for link in answer.json()["links"]]
    assert hrefs
    for href in hrefs:
        assert href.startswith(f"{balancer.url}/engine-rest/"), href


def _starts_served(replica: Replica) -> float:
    text = httpx.get(f"{replica.url}/metrics", timeout=10).text
    return sum(
        sample_value(text, "gateway_start_outcomes_total", outcome=outcome)
        for outcome in ("created", "replayed")
    )
