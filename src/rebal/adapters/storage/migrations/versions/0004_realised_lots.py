"""What each sell fill realised, one row per lot it relieved (the wash-sale check reads it).

Revision ID: 0004_realised_lots
Revises: 0003_policies
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rebal.adapters.storage.types import MONEY, QUANTITY

revision = "0004_realised_lots"
down_revision = "0003_policies"
branch_labels = None
depends_on = None

_ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "realised_lots",
        sa.Column("firm_id", _ID, nullable=False),
        sa.Column("fill_id", _ID, nullable=False),
        sa.Column("part", sa.Integer, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("sold", sa.Date, nullable=False),
        sa.Column("quantity", QUANTITY, nullable=False),
        sa.Column("proceeds", MONEY, nullable=False),
        sa.Column("basis", MONEY),
        sa.Column("acquired", sa.Date),
        sa.PrimaryKeyConstraint("firm_id", "fill_id", "part", name=op.f("pk_realised_lots")),
        sa.ForeignKeyConstraint(
            ["firm_id"], ["firms.id"], name=op.f("fk_realised_lots_firm_id_firms")
        ),
        sa.ForeignKeyConstraint(
            ["firm_id", "fill_id"],
            ["fills.firm_id", "fills.id"],
            name=op.f("fk_realised_lots_firm_id_fill_id_fills"),
        ),
    )
    op.create_index(op.f("ix_realised_lots_firm_id_sold"), "realised_lots", ["firm_id", "sold"])


def downgrade() -> None:
    op.drop_table("realised_lots")
