"""Settings come from the environment, and a bad value names its variable."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.config import load_settings
from gateway.errors import ConfigError

START = "/process-definition/key/gateway-waiting/start"


def test_defaults_follow_the_engine_timeout() -> None:
    settings = load_settings({"GATEWAY_ENGINE_TIMEOUT": "10"})

    assert settings.engine_timeout == 10
    assert settings.lease == 40
    assert settings.inflight_wait == 5
    assert settings.engine_url == "http://127.0.0.1:8080/engine-rest"
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.require_business_key and settings.pass_through


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEWAY_ENGINE_TIMEOUT", "soon"),
        ("GATEWAY_ENGINE_TIMEOUT", "-1"),
        ("GATEWAY_LEASE", "nan"),
        ("GATEWAY_INFLIGHT_WAIT", "-3"),
        ("GATEWAY_REQUIRE_BUSINESS_KEY", "maybe"),
        ("GATEWAY_PASS_THROUGH", "2"),
        ("GATEWAY_PORT", "70000"),
        ("GATEWAY_PORT", "http"),
        ("GATEWAY_LOG_FORMAT", "xml"),
        ("GATEWAY_ENGINE_URL", "ftp://engine/engine-rest"),
        ("GATEWAY_ENGINE_URL", "engine:8080"),
        ("GATEWAY_ENGINE_URL", "http://engine:port/engine-rest"),
        ("GATEWAY_ENGINE_URL", "http://[::1/engine-rest"),
        ("GATEWAY_THREADS", "0"),
        ("GATEWAY_HOST", "127.0.0.1:8000"),
        ("GATEWAY_HOST", "gate way"),
        ("GATEWAY_WORKER_CLASS", "threads"),
        ("GATEWAY_RUNTIME_DIR", "/no/such/folder"),
    ],
)
def test_bad_value_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({variable: value})

    assert variable in raised.value.message


@pytest.mark.skipif(
    not os.access("/dev/shm", os.W_OK), reason="no writable /dev/shm here"
)
def test_the_runtime_files_go_to_memory_by_default() -> None:
    assert load_settings({}).runtime_dir == "/dev/shm"


def test_a_runtime_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    plain_file = tmp_path / "file"
    plain_file.write_text("")

    with pytest.raises(ConfigError) as raised:
        load_settings({"GATEWAY_RUNTIME_DIR": str(plain_file)})

    assert "GATEWAY_RUNTIME_DIR" in raised.value.message


@pytest.mark.parametrize(
    ("engine_timeout", "connect_timeout", "lease"),
    [("30", "5", "10"), ("30", "5", "30"), ("30", "5", "35"), ("10", "10", "20")],
)
def test_a_lease_no_longer_than_connecting_and_waiting_is_refused(
    engine_timeout: str, connect_timeout: str, lease: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(
            {
                "GATEWAY_ENGINE_TIMEOUT": engine_timeout,
                "GATEWAY_ENGINE_CONNECT_TIMEOUT": connect_timeout,
                "GATEWAY_LEASE": lease,
            }
        )

    for variable in (
        "GATEWAY_LEASE",
        "GATEWAY_ENGINE_CONNECT_TIMEOUT",
        "GATEWAY_ENGINE_TIMEOUT",
    ):
        assert variable in raised.value.message


@pytest.mark.parametrize("engine_timeout", ["1", "5", "30", "120"])
def test_the_default_lease_outlasts_connecting_and_waiting(engine_timeout: str) -> None:
    settings = load_settings({"GATEWAY_ENGINE_TIMEOUT": engine_timeout})

    assert settings.lease == settings.engine_timeout + 30
    assert settings.lease > settings.engine_connect_timeout + settings.engine_timeout


@pytest.mark.parametrize(
    "url",
    [
        "http://user:secret@engine:8080/engine-rest",
        "http://user@engine:8080/engine-rest",
        "https://:secret@engine/engine-rest",
        "ftp://user:secret@engine/engine-rest",
    ],
)
def test_an_engine_url_with_credentials_is_refused_without_echoing_them(
    url: str,
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({"GATEWAY_ENGINE_URL": url})

    assert "GATEWAY_ENGINE_URL" in raised.value.message
    assert "credentials" in raised.value.message
    assert "secret" not in raised.value.message


@pytest.mark.parametrize(
    ("url", "engine_base"),
    [
        (
            "HTTP://Engine.Internal:8080/engine-rest",
            "http://engine.internal:8080/engine-rest",
        ),
        ("https://ENGINE/Engine-Rest", "https://engine/Engine-Rest"),
        ("http://engine:08080/engine-rest", "http://engine:8080/engine-rest"),
        ("http://[::1]:8080/engine-rest", "http://[::1]:8080/engine-rest"),
        ("http://engine:8080/engine-rest/", "http://engine:8080/engine-rest"),
        ("http://engine:8080/", "http://engine:8080"),
    ],
)
def test_the_engine_url_is_written_the_way_the_transport_writes_it(
    url: str, engine_base: str
) -> None:
    assert load_settings({"GATEWAY_ENGINE_URL": url}).engine_base == engine_base


def test_a_gateway_reaches_the_engine_at_an_uppercase_url(
    start_gateway: Callable[..., Any], engine_url: str, business_key: str
) -> None:
    uppercase = engine_url.replace("http://127.0.0.1", "HTTP://LOCALHOST")
    gateway = start_gateway(
        engine_url=load_settings({"GATEWAY_ENGINE_URL": uppercase}).engine_url
    )

    with gateway.client() as http:
        started = http.post(START, json={"businessKey": business_key})

    assert started.status_code == 200, started.text
    assert started.headers["Idempotency-Status"] == "created"


@pytest.mark.parametrize(
    ("base_path", "served"),
    [
        ("/", ""),
        ("/engine-rest/", "/engine-rest"),
        ("/camunda/engine-rest", "/camunda/engine-rest"),
    ],
)
def test_a_base_path_is_read_without_its_trailing_slash(
    base_path: str, served: str
) -> None:
    assert load_settings({"GATEWAY_BASE_PATH": base_path}).base_path == served


@pytest.mark.parametrize(
    ("base_path", "served"), [("/", ""), ("/engine-rest/", "/engine-rest")]
)
def test_a_gateway_whose_base_path_ends_in_a_slash_serves_starts_under_it(
    start_gateway: Callable[..., Any],
    business_key: str,
    base_path: str,
    served: str,
) -> None:
    gateway = start_gateway(
        base_path=load_settings({"GATEWAY_BASE_PATH": base_path}).base_path
    )

    started = httpx.post(
        f"{gateway.url}{served}{START}", json={"businessKey": business_key}, timeout=60
    )

    assert started.status_code == 200, started.text
    assert started.headers["Idempotency-Status"] == "created"
    instance = started.json()["id"]
    hrefs = [link["href"] for link in started.json()["links"]]
    assert hrefs == [f"{gateway.url}{served}/process-instance/{instance}"]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "::1", "localhost", "gw-1.internal"])
def test_a_host_is_an_address_or_a_host_name(host: str) -> None:
    assert load_settings({"GATEWAY_HOST": host}).host == host
