"""The store's Alembic migrations, shipped in the package so that ``rebal db init`` works from
an installed wheel. ``rebal.adapters.storage.migrate`` runs them; see docs/store.md for how to
write the next one."""
