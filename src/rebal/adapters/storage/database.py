"""Which database, and an engine set up for it.

The URL: ``--db URL`` beats ``$REBAL_DB``, which beats ``sqlite:///rebal.db`` in the working
directory (:func:`resolve_url`). SQLite files and PostgreSQL (through psycopg 3) are supported; a
plain ``postgresql://`` URL means ``postgresql+psycopg://``.

SQLite is set up on every connection for a store several processes share: foreign keys
enforced, write-ahead logging (readers do not block the writer), a busy timeout (a second
writer waits instead of failing), and every transaction begun ``IMMEDIATE``, holding the write
lock from its start, so that two units of work never interleave and a read-then-write cannot
fail half-way on a lock it did not get.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError

from rebal.ports.storage import StoreUnavailable

#: Where the store is when nothing says otherwise: a file in the working directory.
DEFAULT_URL = "sqlite:///rebal.db"
#: The environment variable naming the store.
ENV = "REBAL_DB"
#: How long a SQLite writer waits for another to finish, in seconds.
BUSY_TIMEOUT = 30.0

_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}
_ACCEPTED = {"sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg"}


def resolve_url(given: str | None, environ: Mapping[str, str]) -> str:
    """The database URL: ``given`` (``--db``), else ``$REBAL_DB``, else :data:`DEFAULT_URL`."""
    return given or environ.get(ENV) or DEFAULT_URL


def parse_url(text: str) -> URL:
    """``text`` as a URL rebal can use (``postgresql://`` → ``postgresql+psycopg://``); raises
    :class:`StoreUnavailable` naming the problem for anything else."""
    try:
        url = make_url(text)
    except ArgumentError:
        raise StoreUnavailable(
            f"{text!r} is not a database URL (use sqlite:///FILE or postgresql://HOST/DB)"
        ) from None
    if url.drivername not in _ACCEPTED:
        raise StoreUnavailable(
            f"unsupported database {url.drivername!r} in {shown(url)}: use sqlite:///FILE or "
            "postgresql://USER@HOST:PORT/DB (psycopg 3)"
        )
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise StoreUnavailable(
            f"{shown(url)} names no file: an in-memory SQLite database would vanish at once "
            "(use sqlite:///FILE)"
        )
    return url.set(drivername=_DRIVERS[url.get_backend_name()])


def shown(url: URL | str) -> str:
    """The URL as it may be printed: the password hidden."""
    return (make_url(url) if isinstance(url, str) else url).render_as_string(hide_password=True)


def create_engine(url: str | URL) -> Engine:
    """An engine for ``url`` (parsed by :func:`parse_url`), SQLite set up as described above."""
    parsed = parse_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT})
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    return sa.create_engine(parsed, pool_pre_ping=True)


def _sqlite_connect(dbapi_connection: Any, _record: object) -> None:
    # The driver's own transaction handling is off: _sqlite_begin issues BEGIN IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
    finally:
        cursor.close()


def _sqlite_begin(connection: sa.Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def connect(engine: Engine) -> sa.Connection:
    """A connection to the engine's database; :class:`StoreUnavailable` (naming the database
    and the driver's reason) when it cannot be reached or opened."""
    try:
        return engine.connect()
    except sa.exc.DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise StoreUnavailable(f"cannot open the database {shown(engine.url)}: {reason}") from None
