"""The notifications outbox: one row per notification and delivery channel.

Revision ID: 0002_outbox
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rebal.adapters.storage.types import UtcInstant

revision = "0002_outbox"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("firm_id", _ID, nullable=False),
        sa.Column("notification_id", _ID, nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("created_at", UtcInstant, nullable=False),
        sa.Column("account_id", _ID),
        sa.Column("run_id", _ID),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UtcInstant),
        sa.Column("delivered_at", UtcInstant),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("firm_id", "notification_id", "channel", name=op.f("pk_outbox")),
        sa.ForeignKeyConstraint(["firm_id"], ["firms.id"], name=op.f("fk_outbox_firm_id_firms")),
    )
    op.create_index(
        op.f("ix_outbox_firm_id_state_next_attempt_at"),
        "outbox",
        ["firm_id", "state", "next_attempt_at"],
    )


def downgrade() -> None:
    op.drop_table("outbox")
