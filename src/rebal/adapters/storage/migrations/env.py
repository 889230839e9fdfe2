"""Alembic's environment for the store: always run from rebal.adapters.storage.migrate, which
passes the connection in (no alembic.ini, no logging set-up of its own).

``render_as_batch`` lets a migration alter a SQLite table (SQLite has almost no ALTER TABLE:
Alembic copies the table instead); ``compare_type`` makes autogenerate see type changes. The
simulated broker keeps its own ``sim_*`` ledger (and migrations) in the same database: those
tables are not the store's and autogenerate leaves them alone.
"""

from __future__ import annotations

from alembic import context

from rebal.adapters.storage.tables import metadata


def _the_stores(name: str | None, type_: str, parent_names: object) -> bool:
    return not (type_ == "table" and name is not None and name.startswith("sim_"))


connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,
    compare_type=True,
    include_name=_the_stores,
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
