"""Create the reservations table.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the reservations table and its indexes."""
    op.create_table(
        "reservations",
        sa.Column("engine_name", sa.Text(), nullable=False),
        # '' stands for "no tenant", so that the identity needs no NULL handling
        sa.Column("tenant_id", sa.Text(), nullable=False, server_default=""),
        sa.Column("process_definition_key", sa.Text(), nullable=False),
        sa.Column("business_key", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        # what was forwarded, so that reconciliation can forward it again after
        # a crash; credentials are never part of it
        sa.Column("start_path", sa.Text(), nullable=False),
        sa.Column("request_body", sa.LargeBinary(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("process_instance_id", sa.Text(), nullable=True),
        sa.Column("response", sa.LargeBinary(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.UniqueConstraint(
            "engine_name",
            "tenant_id",
            "process_definition_key",
            "business_key",
            name="reservations_identity_key",
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'started')", name="reservations_state_check"
        ),
        sa.CheckConstraint(
            "state <> 'started'"
            " OR (process_instance_id IS NOT NULL AND response IS NOT NULL)",
            name="reservations_started_check",
        ),
        sa.CheckConstraint(
            "state <> 'pending' OR lease_expires_at IS NOT NULL",
            name="reservations_pending_check",
        ),
        sa.CheckConstraint("attempt >= 1", name="reservations_attempt_check"),
    )
    # reconciliation looks for pending rows whose lease has expired
    op.create_index(
        "reservations_pending_lease_idx",
        "reservations",
        ["lease_expires_at"],
        postgresql_where=sa.text("state = 'pending'"),
    )
    # purging removes the oldest rows first
    op.create_index("reservations_created_at_idx", "reservations", ["created_at"])


def downgrade() -> None:
    """Drop the reservations table."""
    op.drop_table("reservations")
