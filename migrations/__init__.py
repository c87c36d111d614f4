"""Alembic migrations of the reservations schema."""
