"""A sell's lot instruction (specific identification of the lots its fills relieve), kept with
the order.

Revision ID: 0007_lot_instructions
Revises: 0006_scheduler_indexes
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_lot_instructions"
down_revision = "0006_scheduler_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("lot_instruction", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("lot_instruction")
