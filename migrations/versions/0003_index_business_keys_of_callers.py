"""Index the businessKeys of reservations that name a caller.

With the gateway's own authentication on, several callers may hold the same
businessKey. When one of them adopts an instance, the gateway must skip the
instances that the others have recorded, and this index finds those rows. The
index is partial, so a gateway without its own authentication, whose rows all
have the empty caller, never writes to it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the partial index on the businessKeys of named callers."""
    op.create_index(
        "reservations_caller_business_key_idx",
        "reservations",
        ["business_key"],
        postgresql_where=sa.text("caller <> ''"),
    )


def downgrade() -> None:
    """Drop the partial index."""
    op.drop_index("reservations_caller_business_key_idx", table_name="reservations")
