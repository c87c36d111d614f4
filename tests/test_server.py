"""The gateway as `gateway serve` runs it: what gunicorn itself parses and trusts."""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest

from bench.procfs import children_of
from tests.support.replica import Replica

START = "/engine-rest/process-definition/key/gateway-waiting/start"
PASS_THROUGH = "/engine-rest/process-instance"


@pytest.fixture(scope="module")
def untrusting_replica(
    database_url: str, engine_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replica]:
    """A replica that trusts no proxy, as GATEWAY_TRUSTED_PROXIES is unset."""
    env = {
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_ENGINE_URL": engine_url,
        "GATEWAY_WORKERS": "1",
    }
    logs = tmp_path_factory.mktemp("untrusting") / "replica.log"
    replica = Replica(env, logs)
    replica.env.pop("GATEWAY_TRUSTED_PROXIES", None)
    yield replica.start()
    replica.stop()


@pytest.mark.parametrize(
    "forwarded",
    [
        {"X-Forwarded-Proto": "https"},
        {"X-Forwarded-Protocol": "ssl"},
        {"X-Forwarded-Ssl": "on"},
        {"SCRIPT_NAME": "/engine-rest"},
    ],
    ids=["proto", "protocol", "ssl", "script name"],
)
def test_forwarding_headers_from_loopback_are_not_trusted_by_gunicorn(
    untrusting_replica: Replica, forwarded: dict[str, str]
) -> None:
    business_key = f"order-{uuid.uuid4().hex[:10]}"

    answer = httpx.post(
        f"{untrusting_replica.url}{START}",
        json={"businessKey": business_key},
        headers=forwarded,
        timeout=60,
    )

    assert answer.status_code == 200, answer.text
    hrefs = [link["href"] for link in answer.json()["links"]]
    assert hrefs and all(
        href.startswith(f"{untrusting_replica.url}/engine-rest/") for href in hrefs
    )


def chunked(body: bytes) -> bytes:
    """Encode a body as one well-formed chunk, without the last chunk."""
    return f"{len(body):x}\r\n".encode() + body + b"\r\n"


START_BODY = b'{"businessKey": "order-unreadable"}'
MALFORMED_BODIES = {
    "bad chunk size": chunked(START_BODY) + b"zz\r\n",
    "chunk without its terminator": f"{len(START_BODY):x}\r\n".encode()
    + START_BODY
    + b"XX0\r\n\r\n",
    "body that ends early": f"{len(START_BODY) + 10:x}\r\n".encode() + START_BODY,
}


def send_chunked(replica: Replica, path: str, body: bytes) -> http.client.HTTPResponse:
    """POST a chunked body exactly as given, then stop sending."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {replica.host}:{replica.port}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    sock = socket.create_connection((replica.host, replica.port), timeout=30)
    sock.sendall(head + body)
    # the end of the stream is what makes a body that ends early end
    sock.shutdown(socket.SHUT_WR)
    answer = http.client.HTTPResponse(sock)
    answer.begin()
    return answer


def count_reservations(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM reservations").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("path", [START, PASS_THROUGH], ids=["start", "pass-through"])
@pytest.mark.parametrize("body", MALFORMED_BODIES.values(), ids=MALFORMED_BODIES)
def test_a_malformed_chunked_body_is_refused_with_nothing_reserved(
    own_database: str, engine_url: str, tmp_path: Path, path: str, body: bytes
) -> None:
    env = {
        "GATEWAY_DATABASE_URL": own_database,
        "GATEWAY_ENGINE_URL": engine_url,
        "GATEWAY_WORKERS": "1",
    }
    replica = Replica(env, tmp_path / "replica.log").start()
    try:
        answer = send_chunked(replica, path, body)
        document = orjson.loads(answer.read())
        healthy = httpx.get(f"{replica.url}/healthz", timeout=10)
    finally:
        replica.stop()

    assert answer.status == 400, document
    assert sorted(document) == ["code", "message", "type"]
    assert document["type"] == "InvalidRequestException"
    assert count_reservations(own_database) == 0
    assert healthy.status_code == 200


def test_heartbeat_and_metrics_files_live_in_the_runtime_dir(
    database_url: str, engine_url: str, tmp_path: Path
) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    env = {
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_ENGINE_URL": engine_url,
        "GATEWAY_WORKERS": "1",
        "GATEWAY_RUNTIME_DIR": str(runtime),
    }
    replica = Replica(env, tmp_path / "replica.log")
    # serve makes its own metrics folder only when none is given
    replica.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    replica.start()
    assert replica.process is not None
    try:
        # a request has written its samples by the time its answer arrives
        assert httpx.get(f"{replica.url}/healthz").status_code == 200
        (worker,) = children_of(replica.process.pid)
        open_files = _open_files(worker)
        mapped_files = _mapped_files(worker)
        metrics_dirs = list(runtime.glob("gateway-metrics-*"))
    finally:
        replica.stop()

    heartbeat = f"{runtime}/wgunicorn-"
    assert any(name.startswith(heartbeat) for name in open_files), open_files
    (metrics_dir,) = metrics_dirs
    assert any(name.startswith(f"{metrics_dir}/") for name in mapped_files)
    # the folder that serve made for itself goes when it stops
    assert not metrics_dir.exists()


def _open_files(pid: int) -> list[str]:
    names = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        # a socket that closes between the listing and the read is no file of ours
        with contextlib.suppress(FileNotFoundError):
            names.append(os.readlink(fd))
    return names


def _mapped_files(pid: int) -> set[str]:
    lines = Path(f"/proc/{pid}/maps").read_text().splitlines()
    return {line.split(maxsplit=5)[5] for line in lines if len(line.split()) == 6}
