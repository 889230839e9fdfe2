"""Investment policies per account, and the scheduler's marks between ticks.

Revision ID: 0003_policies
Revises: 0002_outbox
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rebal.adapters.storage.types import Exact, UtcInstant

revision = "0003_policies"
down_revision = "0002_outbox"
branch_labels = None
depends_on = None

_ID = sa.String(64)


def _keys(table: str) -> list[sa.schema.SchemaItem]:
    """The firm and account key of a per-account table, with its references."""
    return [
        sa.PrimaryKeyConstraint("firm_id", "account_id", name=op.f(f"pk_{table}")),
        sa.ForeignKeyConstraint(["firm_id"], ["firms.id"], name=op.f(f"fk_{table}_firm_id_firms")),
        sa.ForeignKeyConstraint(
            ["firm_id", "account_id"],
            ["accounts.firm_id", "accounts.id"],
            name=op.f(f"fk_{table}_firm_id_account_id_accounts"),
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "policies",
        sa.Column("firm_id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("program", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("frequency", sa.String(16), nullable=False),
        sa.Column("day", sa.Date),
        sa.Column("band_abs", Exact),
        sa.Column("band_rel", Exact),
        sa.Column("cadence_days", sa.Integer, nullable=False),
        sa.Column("cooldown_days", sa.Integer, nullable=False),
        *_keys("policies"),
    )
    op.create_table(
        "schedule_marks",
        sa.Column("firm_id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("instant_requested_at", UtcInstant),
        sa.Column("postponed_until", UtcInstant),
        sa.Column("reason", sa.Text, nullable=False),
        *_keys("schedule_marks"),
    )


def downgrade() -> None:
    op.drop_table("schedule_marks")
    op.drop_table("policies")
