"""The store on a database: SQLAlchemy Core tables, repositories and a unit of work that
implement :mod:`rebal.ports.storage`, on SQLite (the embedded default) or PostgreSQL, with the
schema kept by the Alembic migrations shipped in ``migrations/``. See docs/store.md."""
