"""The Docker image's steps, checked without a Docker engine: lint and install."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from gateway.schema import head_revision
from tests.conftest import TEST_DATABASE_PREFIX
from tests.conftest import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
HADOLINT = str(Path(sys.executable).parent / "hadolint")


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "engine/Dockerfile"])
def test_dockerfile_passes_hadolint(dockerfile: str) -> None:
    done = subprocess.run(
        [HADOLINT, str(ROOT / dockerfile)], capture_output=True, timeout=60, check=False
    )

    assert done.returncode == 0, done.stdout.decode()


def test_dockerfile_runs_unprivileged_with_a_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    runtime = text.rsplit("FROM ", 1)[1]

    assert "USER 10001" in runtime
    assert "HEALTHCHECK" in runtime
    assert 'CMD ["serve"]' in runtime
    assert "COPY --from=build /opt/gateway /opt/gateway" in runtime


@pytest.fixture
def fresh_database(postgres: PostgresServer) -> Iterator[str]:
    name = f"{TEST_DATABASE_PREFIX}{uuid.uuid4().hex[:12]}"
    yield postgres.create_database(name)
    postgres.drop_database(name)


def test_the_image_install_steps_give_a_working_gateway(
    tmp_path: Path, fresh_database: str
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # the same command as the image's build stage, outside the source tree
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(ROOT)],
        capture_output=True,
        timeout=600,
        check=False,
        cwd=tmp_path,
    )
    assert install.returncode == 0, install.stderr.decode()[-2000:]

    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "GATEWAY_DATABASE_URL": fresh_database,
    }
    migrate = subprocess.run(
        [str(venv / "bin" / "gateway"), "migrate"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
        check=False,
    )

    assert migrate.returncode == 0, migrate.stderr.decode()[-2000:]
    with psycopg.connect(fresh_database) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (
            head_revision(),
        )
    served = subprocess.run(
        [str(venv / "bin" / "gateway"), "serve", "--help"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert served.returncode == 0
