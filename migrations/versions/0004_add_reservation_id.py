"""Give each reservation an id of its own, apart from its identity.

A reservation that is released and made again has the same identity and starts
again at attempt 1. Fencing on the identity and the attempt alone would let a
late answer of the first reservation's attempt 1 record into, or delete, the
second one. The id tells the two apart, and every write after a forward names it.

The column has no default for the rows already there, which keeps the upgrade
from rewriting the table; those rows keep a null id, which their own writes
match with IS NOT DISTINCT FROM. New rows get a random id.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the reservation id, random for every new row."""
    op.add_column(
        "reservations",
        sa.Column("reservation_id", postgresql.UUID(as_uuid=True), nullable=True),
    )
    op.alter_column(
        "reservations",
        "reservation_id",
        server_default=sa.text("gen_random_uuid()"),
    )


def downgrade() -> None:
    """Drop the reservation id."""
    op.drop_column("reservations", "reservation_id")
