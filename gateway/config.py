"""Read the gateway's settings from the environment, once."""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
from collections.abc import Mapping
from urllib.parse import SplitResult
from urllib.parse import urlsplit

from gateway.errors import ConfigError

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
# RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens
_HOSTNAME = re.compile(
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
# gunicorn's worker classes for a WSGI app; the gateway is tested with gthread
WORKER_CLASSES = ("gthread", "sync", "gevent", "eventlet", "tornado")
# Linux's shared-memory filesystem: files there live in memory, never on a disk.
# Only mkdtemp and mkstemp create anything there, under random private names
MEMORY_FILESYSTEM = "/dev/shm"  # noqa: S108


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every setting of the gateway, validated."""

    database_url: str | None = None
    engine_url: str = "http://127.0.0.1:8080/engine-rest"
    engine_timeout: float = 30.0
    engine_connect_timeout: float = 5.0
    lease: float = 60.0
    inflight_wait: float = 5.0
    require_business_key: bool = True
    pass_through: bool = True
    host: str = "127.0.0.1"
    port: int = 8000
    log_format: str = "text"
    log_level: str = "INFO"
    base_path: str = "/engine-rest"
    workers: int = 2
    threads: int = 16
    worker_class: str = "gthread"
    db_pool_size: int = 18
    db_pool_timeout: float = 2.0
    max_body_bytes: int = 1024 * 1024
    max_business_key_length: int = 255
    max_variable_name_length: int = 255
    max_json_depth: int = 32
    replay_authorization: bool = True
    replay_authorization_cache: float = 5.0
    trusted_proxies: int = 0
    grace_period: float = 30.0
    keepalive: int = 75
    # None: the system's temporary folder
    runtime_dir: str | None = None
    api_keys: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)
    reconcile_user: str | None = None
    reconcile_password: str | None = dataclasses.field(default=None, repr=False)

    @property
    def engine_base(self) -> str:
        """Return the engine URL without a trailing slash."""
        return self.engine_url.rstrip("/")

    def require_database_url(self) -> str:
        """Return the database URL, or fail if it is not configured."""
        if not self.database_url:
            raise ConfigError("GATEWAY_DATABASE_URL is not set")
        return self.database_url


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from ``environ`` (the process environment by default)."""
    env = os.environ if environ is None else environ
    reader = _Reader(env)

    engine_timeout = reader.positive_float("GATEWAY_ENGINE_TIMEOUT", 30.0)
    threads = reader.positive_int("GATEWAY_THREADS", 16)
    settings = Settings(
        database_url=env.get("GATEWAY_DATABASE_URL") or None,
        engine_url=reader.url("GATEWAY_ENGINE_URL", Settings.engine_url),
        engine_timeout=engine_timeout,
        engine_connect_timeout=reader.positive_float(
            "GATEWAY_ENGINE_CONNECT_TIMEOUT", min(5.0, engine_timeout)
        ),
        lease=reader.positive_float("GATEWAY_LEASE", engine_timeout + 30.0),
        inflight_wait=reader.non_negative_float("GATEWAY_INFLIGHT_WAIT", 5.0),
        require_business_key=reader.boolean("GATEWAY_REQUIRE_BUSINESS_KEY", True),
        pass_through=reader.boolean("GATEWAY_PASS_THROUGH", True),
        host=reader.host("GATEWAY_HOST", "127.0.0.1"),
        port=reader.port("GATEWAY_PORT", 8000),
        log_format=reader.choice("GATEWAY_LOG_FORMAT", "text", ("json", "text")),
        log_level=reader.choice(
            "GATEWAY_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")
        ),
        base_path=reader.base_path("GATEWAY_BASE_PATH", "/engine-rest"),
        workers=reader.positive_int("GATEWAY_WORKERS", 2),
        threads=threads,
        worker_class=reader.choice("GATEWAY_WORKER_CLASS", "gthread", WORKER_CLASSES),
        # a start holds its connection until it has answered, so one per thread,
        # and two more so that /readyz and /metrics never queue behind starts
        db_pool_size=reader.positive_int("GATEWAY_DB_POOL_SIZE", threads + 2),
        db_pool_timeout=reader.positive_float("GATEWAY_DB_POOL_TIMEOUT", 2.0),
        max_body_bytes=reader.positive_int("GATEWAY_MAX_BODY_BYTES", 1024 * 1024),
        max_business_key_length=reader.bounded_int(
            "GATEWAY_MAX_BUSINESS_KEY_LENGTH", 255, 255
        ),
        max_variable_name_length=reader.positive_int(
            "GATEWAY_MAX_VARIABLE_NAME_LENGTH", 255
        ),
        max_json_depth=reader.positive_int("GATEWAY_MAX_JSON_DEPTH", 32),
        replay_authorization=reader.boolean("GATEWAY_REPLAY_AUTHORIZATION", True),
        replay_authorization_cache=reader.non_negative_float(
            "GATEWAY_REPLAY_AUTHORIZATION_CACHE", 5.0
        ),
        trusted_proxies=reader.non_negative_int("GATEWAY_TRUSTED_PROXIES", 0),
        grace_period=reader.non_negative_float("GATEWAY_GRACE_PERIOD", 30.0),
        keepalive=reader.positive_int("GATEWAY_KEEPALIVE", 75),
        runtime_dir=reader.directory("GATEWAY_RUNTIME_DIR", _memory_filesystem()),
        api_keys=reader.api_keys("GATEWAY_API_KEYS"),
        reconcile_user=env.get("GATEWAY_RECONCILE_USER") or None,
        reconcile_password=env.get("GATEWAY_RECONCILE_PASSWORD") or None,
    )
    _check_lease(settings)
    return settings


def _memory_filesystem() -> str | None:
    """Return /dev/shm where it exists and this user may write there."""
    found = os.path.isdir(MEMORY_FILESYSTEM) and os.access(
        MEMORY_FILESYSTEM, os.W_OK | os.X_OK
    )
    return MEMORY_FILESYSTEM if found else None


def _check_lease(settings: Settings) -> None:
    # a start may take the connect timeout and then the engine timeout before
    # it has its answer; a shorter lease would let a second request take over
    # a start that the first one is still waiting for
    longest_start = settings.engine_connect_timeout + settings.engine_timeout
    if settings.lease <= longest_start:
        raise ConfigError(
            f"GATEWAY_LEASE must be longer than GATEWAY_ENGINE_CONNECT_TIMEOUT "
            f"+ GATEWAY_ENGINE_TIMEOUT ({longest_start:g}s), got {settings.lease:g}s"
        )


def _split_url(name: str, raw: str) -> tuple[SplitResult, int | None]:
    try:
        parts = urlsplit(raw)
        return parts, parts.port
    except ValueError:
        # never echo the value: it may hold a password
        raise ConfigError(
            f"{name} must be an http or https URL with a valid host and port"
        ) from None


class _Reader:
    """Parse typed values out of an environment, naming the variable on error."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def _raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def positive_float(self, name: str, default: float) -> float:
        value = self.non_negative_float(name, default)
        if value <= 0:
            raise ConfigError(f"{name} must be greater than 0, got {value:g}")
        return value

    def non_negative_float(self, name: str, default: float) -> float:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(
                f"{name} must be a number of seconds, got {raw!r}"
            ) from None
        if value < 0 or not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number >= 0, got {raw!r}")
        return value

    def positive_int(self, name: str, default: int) -> int:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
        if value <= 0:
            raise ConfigError(f"{name} must be greater than 0, got {value}")
        return value

    def non_negative_int(self, name: str, default: int) -> int:
        raw = self._raw(name)
        if raw is None:
            return default
        if not raw.isdigit():
            raise ConfigError(f"{name} must be a whole number >= 0, got {raw!r}")
        return int(raw)

    def bounded_int(self, name: str, default: int, maximum: int) -> int:
        value = self.positive_int(name, default)
        if value > maximum:
            raise ConfigError(f"{name} must be at most {maximum}, got {value}")
        return value

    def api_keys(self, name: str) -> dict[str, str]:
        raw = self._raw(name)
        if raw is None:
            return {}
        keys: dict[str, str] = {}
        for entry in raw.split(","):
            caller, separator, key = entry.strip().partition("=")
            if not separator or not caller or len(key) < 16:
                # never echo the value: it holds secrets
                raise ConfigError(
                    f"{name} must be a comma-separated list of caller=key, "
                    "each key at least 16 characters"
                )
            keys[caller] = key
        return keys

    def directory(self, name: str, default: str | None) -> str | None:
        raw = self._raw(name)
        if raw is None:
            return default
        if not os.path.isdir(raw):
            raise ConfigError(f"{name} must be an existing folder, got {raw!r}")
        if not os.access(raw, os.W_OK | os.X_OK):
            raise ConfigError(
                f"{name} must be a folder this user can write, got {raw!r}"
            )
        return raw

    def port(self, name: str, default: int) -> int:
        value = self.positive_int(name, default)
        if value > 65535:
            raise ConfigError(f"{name} must be a TCP port (1-65535), got {value}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self._raw(name)
        if raw is None:
            return default
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        raw = self._raw(name)
        if raw is None:
            return default
        for choice in choices:
            if raw.lower() == choice.lower():
                return choice
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")

    def host(self, name: str, default: str) -> str:
        raw = self._raw(name) or default
        try:
            ipaddress.ip_address(raw)
        except ValueError:
            if not _HOSTNAME.fullmatch(raw):
                raise ConfigError(
                    f"{name} must be an IP address or a host name, got {raw!r}"
                ) from None
        return raw

    def url(self, name: str, default: str) -> str:
        raw = self._raw(name) or default
        parts, port = _split_url(name, raw)
        if parts.username is not None or parts.password is not None:
            # never echo the value: it holds a password
            raise ConfigError(
                f"{name} must not contain credentials; each caller sends its own, "
                "and the gateway forwards them to the engine"
            )
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{name} must be an http or https URL, got {raw!r}")
        if parts.query or parts.fragment:
            raise ConfigError(f"{name} must not have a query or fragment, got {raw!r}")
        # the transport writes the origin in canonical form (lowercase, a plain
        # port) and the engine client checks every URL against it, so the base
        # must be written the same way
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        netloc = host if port is None else f"{host}:{port}"
        return f"{parts.scheme}://{netloc}{parts.path}".rstrip("/")

    def base_path(self, name: str, default: str) -> str:
        raw = self._raw(name) or default
        if not raw.startswith("/") or "//" in raw or "?" in raw:
            raise ConfigError(
                f"{name} must be an absolute path like /engine-rest, got {raw!r}"
            )
        # no trailing slash, as routes append "/process-definition" and the
        # like; "/" becomes "", which serves the engine API at the root
        return raw.rstrip("/")
