"""Run the migrations online, one process at a time."""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context

from gateway.schema import MIGRATION_LOCK_ID
from gateway.schema import sqlalchemy_url


def run_migrations_online() -> None:
    """Upgrade or downgrade while holding the migration advisory lock."""
    url = context.config.get_main_option("sqlalchemy.url") or os.environ.get(
        "GATEWAY_DATABASE_URL", ""
    )
    engine = sa.create_engine(sqlalchemy_url(url), poolclass=sa.pool.NullPool)

    with engine.connect() as connection:
        # replicas may all run `gateway migrate` during a rollout; the lock makes
        # the second one wait and then find the schema already at head
        connection.execute(
            sa.text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID}
        )
        connection.commit()
        try:
            context.configure(connection=connection, transactional_ddl=True)
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            connection.execute(
                sa.text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID}
            )
            connection.commit()


if context.is_offline_mode():
    raise SystemExit(
        "offline migrations are not supported; run them against a database"
    )
run_migrations_online()
