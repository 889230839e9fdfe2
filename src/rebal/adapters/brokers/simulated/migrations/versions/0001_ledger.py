"""The ledger as first released: accounts, positions, transfers, orders, fills, requests, faults.

A database with no ledger gets the tables from ``tables.metadata`` and is stamped at the head
(``schema.migrate``); this revision is the baseline later revisions migrate from, so it has no
operations of its own.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from collections.abc import Sequence

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing to do: the baseline."""


def downgrade() -> None:
    """Nothing to undo: the baseline."""
