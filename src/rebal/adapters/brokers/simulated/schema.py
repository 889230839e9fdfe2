"""Connecting to the ledger's database and bringing its tables to the latest revision.

:func:`connect` makes an engine for a database URL: SQLite (a file; writers take the database
lock when their transaction begins, so two processes never interleave half-done work) or
PostgreSQL through psycopg 3 (a plain ``postgresql://`` URL means the same). :func:`migrate`
creates the ``sim_*`` tables in an empty database and migrates older ones with the ledger's own
Alembic history (``migrations/``, version table ``sim_alembic_version``), never touching
another table; it is safe to repeat and safe when two processes start at once.
"""

from __future__ import annotations

import sqlite3
import time
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from rebal.adapters.brokers.simulated.tables import PREFIX, VERSION_TABLE, metadata

MIGRATIONS = Path(__file__).with_name("migrations")
#: Serialises migrations of the ledger on PostgreSQL (an advisory lock held by the transaction).
_MIGRATION_LOCK = 0x5133_0001
#: How long a SQLite writer waits for another's lock before giving up, in seconds.
SQLITE_BUSY_SECONDS = 60.0


def database_url(url: str) -> str:
    """``url`` with a plain PostgreSQL scheme given the psycopg 3 driver."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


def connect(url: str) -> sa.Engine:
    """An engine for ``url`` set up for the ledger's transactions."""
    url = database_url(url)
    if not url.startswith("sqlite"):
        engine = sa.create_engine(url)

        @sa.event.listens_for(engine, "connect")
        def _commit_without_waiting_for_the_disk(dbapi_connection: Any, _record: Any) -> None:
            # A commit returns once the server has it, before its WAL reaches the disk: safe
            # when any client dies, and a server crash loses at most the last instants.
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET synchronous_commit TO off")
            dbapi_connection.commit()

        return engine
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS})

    @sa.event.listens_for(engine, "connect")
    def _manual_transactions(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, say when a transaction begins ...
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA foreign_keys = ON")
        # ... write ahead (readers and a writer do not block each other), and commit without
        # waiting for the disk: safe when any process dies, never corrupt, and a machine
        # crash loses at most the last transactions.
        _write_ahead(dbapi_connection)
        dbapi_connection.execute("PRAGMA synchronous = NORMAL")

    @sa.event.listens_for(engine, "begin")
    def _begin_immediate(connection: sa.Connection) -> None:
        # ... and take the write lock at once, so a read-then-write never deadlocks another
        # writer and DDL is transactional.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@cache
def _scripts() -> tuple[Config, str | None]:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config, ScriptDirectory.from_config(config).get_current_head()


def _only_ledger(name: str | None, type_: str, _parent: Any) -> bool:
    return type_ != "table" or (name or "").startswith(PREFIX)


def migration_options() -> dict[str, Any]:
    """How Alembic sees the ledger: its version table, its tables only, batch mode (SQLite)."""
    return {
        "version_table": VERSION_TABLE,
        "target_metadata": metadata,
        "include_name": _only_ledger,
        "render_as_batch": True,
    }


def revision(connection: sa.Connection) -> str | None:
    """The ledger's revision in this database, ``None`` when it has no ledger."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def _write_ahead(dbapi_connection: Any) -> None:
    """Switch the file to write-ahead logging. The switch needs the file to itself and SQLite
    answers "locked" at once, without its busy wait, while another connection (a process
    migrating at the same time) holds it: wait for it, as long as any other lock."""
    deadline = time.monotonic() + SQLITE_BUSY_SECONDS
    while True:
        try:
            dbapi_connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def migrate(engine: sa.Engine) -> None:
    """Create the ledger's tables, or migrate them to the latest revision."""
    config, head = _scripts()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
        current = revision(connection)
        if current == head:
            return
        if current is None and not any(
            name.startswith(PREFIX) for name in sa.inspect(connection).get_table_names()
        ):
            # An empty database: the tables as they are now, then recorded as the head.
            metadata.create_all(connection)
            config.attributes["connection"] = connection
            command.stamp(config, "head")
            return
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
