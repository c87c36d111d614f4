"""Apply and inspect the alembic migrations of the reservations schema."""

from __future__ import annotations

import functools
import importlib.resources
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

log = logging.getLogger(__name__)

# an arbitrary constant that every replica uses for `pg_advisory_lock`
MIGRATION_LOCK_ID = 7_341_002_118

_MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def sqlalchemy_url(database_url: str) -> str:
    """Return the URL with the psycopg 3 driver that SQLAlchemy should use."""
    for prefix in ("postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix) :]
    return database_url


def alembic_config(database_url: str | None = None) -> Config:
    """Build the alembic configuration without needing alembic.ini."""
    config = Config()
    config.set_main_option("script_location", _script_location())
    if database_url:
        # alembic's config is an ini file, so a literal % must be doubled
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


@functools.cache
def head_revision() -> str:
    """Return the head revision of the migrations shipped with this gateway."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("the migrations have no head revision")
    return head


def upgrade(database_url: str) -> None:
    """Upgrade the database to head."""
    log.info("migrating the database to revision %s", head_revision())
    command.upgrade(alembic_config(database_url), "head")


def _script_location() -> str:
    if _MIGRATIONS.is_dir():
        return str(_MIGRATIONS)
    # installed from a wheel: the migrations are the `migrations` package
    return str(importlib.resources.files("migrations"))
