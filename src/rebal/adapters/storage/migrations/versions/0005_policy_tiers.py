"""A tiered trigger's wide bands in each account's investment policy (policies.csv's
``wide_band_abs`` and ``wide_band_rel``).

Revision ID: 0005_policy_tiers
Revises: 0004_realised_lots
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rebal.adapters.storage.types import Exact

revision = "0005_policy_tiers"
down_revision = "0004_realised_lots"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("policies", sa.Column("wide_band_abs", Exact))
    op.add_column("policies", sa.Column("wide_band_rel", Exact))


def downgrade() -> None:
    with op.batch_alter_table("policies") as batch:
        batch.drop_column("wide_band_rel")
        batch.drop_column("wide_band_abs")
