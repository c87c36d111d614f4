"""Settings come from the environment, and a bad value names its variable."""

from __future__ import annotations

import pytest

from gateway.config import load_settings
from gateway.errors import ConfigError


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
        ("GATEWAY_THREADS", "0"),
        ("GATEWAY_HOST", "127.0.0.1:8000"),
        ("GATEWAY_HOST", "gate way"),
        ("GATEWAY_WORKER_CLASS", "threads"),
    ],
)
def test_bad_value_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({variable: value})

    assert variable in raised.value.message


def test_a_lease_shorter_than_the_engine_timeout_is_refused() -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({"GATEWAY_ENGINE_TIMEOUT": "30", "GATEWAY_LEASE": "10"})

    assert "GATEWAY_LEASE" in raised.value.message


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "::1", "localhost", "gw-1.internal"])
def test_a_host_is_an_address_or_a_host_name(host: str) -> None:
    assert load_settings({"GATEWAY_HOST": host}).host == host
