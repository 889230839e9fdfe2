"""Indexes a scheduler tick's snapshot reads by: an account's proposals and a proposal's run.

Revision ID: 0006_scheduler_indexes
Revises: 0005_policy_tiers
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0006_scheduler_indexes"
down_revision = "0005_policy_tiers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_proposal_accounts_firm_id_account_id"),
        "proposal_accounts",
        ["firm_id", "account_id"],
    )
    op.create_index(op.f("ix_runs_firm_id_proposal_id"), "runs", ["firm_id", "proposal_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_runs_firm_id_proposal_id"), "runs")
    op.drop_index(op.f("ix_proposal_accounts_firm_id_account_id"), "proposal_accounts")
