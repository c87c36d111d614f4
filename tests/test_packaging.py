"""The Docker image's steps, checked without a Docker engine: lint and install."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dockerfile_parse import DockerfileParser

from bench.procfs import children_of
from devenv.ports import free_port
from devenv.ports import is_listening
from devenv.ports import wait_until
from gateway.schema import head_revision

ROOT = Path(__file__).resolve().parent.parent
HADOLINT = str(Path(sys.executable).parent / "hadolint")


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "engine/Dockerfile"])
def test_dockerfile_passes_hadolint(dockerfile: str) -> None:
    done = subprocess.run(
        [HADOLINT, str(ROOT / dockerfile)], capture_output=True, timeout=60, check=False
    )

    assert done.returncode == 0, done.stdout.decode()


def runtime_stage() -> list[dict[str, Any]]:
    """Return the instructions of the Dockerfile's last stage, the runtime."""
    instructions = DockerfileParser(path=str(ROOT / "Dockerfile")).structure
    froms = [i for i, step in enumerate(instructions) if step["instruction"] == "FROM"]
    return [
        step for step in instructions[froms[-1] :] if step["instruction"] != "COMMENT"
    ]


def values(stage: list[dict[str, Any]], instruction: str) -> list[str]:
    return [step["value"] for step in stage if step["instruction"] == instruction]


def healthcheck_command() -> list[str]:
    """Return the runtime stage's HEALTHCHECK command line."""
    [healthcheck] = values(runtime_stage(), "HEALTHCHECK")
    command: list[str] = json.loads(healthcheck.split("CMD", 1)[1])
    return command


def test_dockerfile_runtime_stage_serves_as_an_unprivileged_user() -> None:
    stage = runtime_stage()

    # the only user switch comes after the last step that needs root
    assert values(stage, "USER") == ["10001"]
    names = [step["instruction"] for step in stage]
    assert "RUN" not in names[names.index("USER") :]
    assert "--uid 10001" in values(stage, "RUN")[0]
    assert values(stage, "COPY") == ["--from=build /opt/gateway /opt/gateway"]
    assert [json.loads(value) for value in values(stage, "ENTRYPOINT")] == [["gateway"]]
    assert [json.loads(value) for value in values(stage, "CMD")] == [["serve"]]
    # the health check asks the port that the image configures
    port = DockerfileParser(path=str(ROOT / "Dockerfile")).envs["GATEWAY_PORT"]
    assert f"127.0.0.1:{port}/healthz" in " ".join(healthcheck_command())


@pytest.fixture(scope="module")
def image_venv() -> Iterator[Path]:
    """Install the gateway as the image's build stage does, outside the source tree."""
    # readable by the image's unprivileged user, as /opt/gateway is in the image
    root = Path(tempfile.mkdtemp(prefix="gateway-image-"))
    root.chmod(0o755)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(ROOT)],
        capture_output=True,
        timeout=600,
        check=False,
        cwd=root,
    )
    assert install.returncode == 0, install.stderr.decode()[-2000:]
    yield venv
    shutil.rmtree(root, ignore_errors=True)


def image_env(venv: Path, database_url: str) -> dict[str, str]:
    """Return the runtime stage's environment, with this machine's paths."""
    env = dict(DockerfileParser(path=str(ROOT / "Dockerfile")).envs)
    env.update(PATH=f"{venv / 'bin'}:/usr/bin:/bin", GATEWAY_DATABASE_URL=database_url)
    return env


def test_the_image_install_steps_give_a_migrating_gateway(
    image_venv: Path, empty_database: str
) -> None:
    migrate = subprocess.run(
        [str(image_venv / "bin" / "gateway"), "migrate"],
        env=image_env(image_venv, empty_database),
        cwd=image_venv,
        capture_output=True,
        timeout=120,
        check=False,
    )

    assert migrate.returncode == 0, migrate.stderr.decode()[-2000:]
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (
            head_revision(),
        )


def test_the_image_serves_as_uid_10001_and_its_healthcheck_tells_up_from_down(
    image_venv: Path, database_url: str, tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("switching to the image's user needs root, as CI has")
    port = free_port()
    env = {
        **image_env(image_venv, database_url),
        # loopback only here; the image itself listens on every interface
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "GATEWAY_GRACE_PERIOD": "1",
    }
    as_user = ["setpriv", "--reuid=10001", "--regid=10001", "--clear-groups", "--"]
    command = [*as_user, str(image_venv / "bin" / "gateway"), "serve"]
    check = [
        part.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        for part in healthcheck_command()
    ]

    with (tmp_path / "serve.log").open("wb") as output:
        server = subprocess.Popen(command, env=env, stdout=output, stderr=output)
    try:
        wait_until(lambda: is_listening(port), 60, "the gateway as uid 10001")
        users = {pid: uid_of(pid) for pid in [server.pid, *children_of(server.pid)]}
        healthy = subprocess.run(
            check, env=env, capture_output=True, timeout=30, check=False
        )
    finally:
        server.terminate()
        server.wait(timeout=60)
    down = subprocess.run(check, env=env, capture_output=True, timeout=30, check=False)

    assert set(users.values()) == {10001}, users
    assert len(users) >= 2  # the arbiter and its worker
    assert healthy.returncode == 0, healthy.stderr.decode()
    assert down.returncode != 0


def uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for process {pid}")
