"""Block orders: the legs each block order was funded by and allocated to (``sim_block_legs``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

from rebal.adapters.brokers.simulated.tables import block_legs

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the table as :data:`~rebal.adapters.brokers.simulated.tables.block_legs` has it."""
    block_legs.create(op.get_bind())


def downgrade() -> None:
    """Drop it."""
    op.drop_table(block_legs.name)
