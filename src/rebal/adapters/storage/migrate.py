"""Create or migrate the store's schema, and check that a database has the schema this rebal
knows, with the Alembic scripts shipped in ``migrations/``.

On SQLite, foreign keys are off while a migration runs (a batch migration copies a table, which
would otherwise trip its references) and checked once it is done, before they go back on.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from rebal.adapters.storage.database import connect, shown
from rebal.ports.storage import SchemaNotCurrent, StoreError


@dataclass(frozen=True, slots=True)
class Migration:
    """What ``upgrade`` did: the revision found (``None``: an empty database) and the one left."""

    before: str | None
    after: str

    @property
    def changed(self) -> bool:
        """Whether any migration ran."""
        return self.before != self.after


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """Alembic's configuration for the shipped scripts, on ``connection``: what
    ``alembic.command`` functions take (docs/store.md shows how to write a migration)."""
    config = Config()
    scripts = resources.files("rebal.adapters.storage") / "migrations"
    config.set_main_option("script_location", str(scripts))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision of the shipped scripts: the schema this rebal works with."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision is None:
        raise StoreError("the migration scripts are missing from this installation of rebal")
    return revision


def _revision(connection: sa.Connection) -> str | None:
    revision = MigrationContext.configure(connection).get_current_revision()
    connection.commit()
    return revision


def _sqlite_foreign_keys(connection: sa.Connection, on: bool) -> None:
    if connection.dialect.name == "sqlite":
        raw = connection.connection.dbapi_connection
        assert raw is not None
        raw.execute(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")


def upgrade(engine: Engine) -> Migration:
    """Bring the database to :func:`head`, creating the schema in an empty one; safe to repeat
    (a database at head is left as it is)."""
    with connect(engine) as connection:
        _sqlite_foreign_keys(connection, on=False)
        try:
            before = _revision(connection)
            command.upgrade(alembic_config(connection), "head")
            connection.commit()
            if connection.dialect.name == "sqlite":
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                connection.commit()
                if broken:
                    raise StoreError(f"the migration left broken references: {broken[:5]}")
            after = _revision(connection)
        finally:
            _sqlite_foreign_keys(connection, on=True)
    assert after is not None
    return Migration(before, after)


def check_current(engine: Engine) -> None:
    """Raise :class:`SchemaNotCurrent`, saying what to do, unless the database is at
    :func:`head`."""
    with connect(engine) as connection:
        found = _revision(connection)
    wanted = head()
    where = shown(engine.url)
    if found == wanted:
        return
    if found is None:
        raise SchemaNotCurrent(f"{where} has no rebal schema yet: run `rebal db init` first")
    known = {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if found in known:
        raise SchemaNotCurrent(
            f"{where} has the schema of revision {found}, this rebal needs {wanted}: "
            "run `rebal db init` to migrate it"
        )
    raise SchemaNotCurrent(
        f"{where} has schema revision {found}, which this rebal does not know (a newer rebal "
        "migrated it): upgrade rebal"
    )
