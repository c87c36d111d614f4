"""Make the calling client part of the reservation identity.

With the gateway's own authentication on, two clients may use the same
businessKey without meeting each other's reservations. Without it, every row
has the empty caller, so existing rows keep their identity.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_OLD = ["engine_name", "tenant_id", "process_definition_key", "business_key"]


def upgrade() -> None:
    """Add the caller column and widen the unique constraint to include it."""
    op.add_column(
        "reservations",
        sa.Column("caller", sa.Text(), nullable=False, server_default=""),
    )
    op.drop_constraint("reservations_identity_key", "reservations", type_="unique")
    op.create_unique_constraint(
        "reservations_identity_key", "reservations", ["caller", *_OLD]
    )


def downgrade() -> None:
    """Drop the caller again; it fails if two callers share an identity."""
    op.drop_constraint("reservations_identity_key", "reservations", type_="unique")
    op.create_unique_constraint("reservations_identity_key", "reservations", _OLD)
    op.drop_column("reservations", "caller")
