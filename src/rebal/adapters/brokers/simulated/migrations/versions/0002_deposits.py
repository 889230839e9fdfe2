"""Deposits: a transfer may carry a reference (the cash flow it settles), taken once.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sim_transfers") as batch:
        batch.add_column(sa.Column("reference", sa.String(128), nullable=True))
    op.create_index("ix_sim_transfers_reference", "sim_transfers", ["reference"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_sim_transfers_reference", table_name="sim_transfers")
    with op.batch_alter_table("sim_transfers") as batch:
        batch.drop_column("reference")
