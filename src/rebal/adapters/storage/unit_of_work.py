"""The store on a database: :class:`SqlStore` opens units of work, each one transaction on one
connection, with the repositories of :mod:`rebal.adapters.storage.repositories` bound to it.

Locks: a named lock is a PostgreSQL transaction-level advisory lock keyed by the schema, the
firm and the name (so that tests in separate schemas never wait for each other); on SQLite the
unit of work already holds the database's write lock (``BEGIN IMMEDIATE``). Rows read with
``for_update`` are locked with ``SELECT ... FOR UPDATE`` on PostgreSQL, and by that same write
lock on SQLite.

Claims, held across units of work (one process trading a run): on PostgreSQL a session-level
advisory lock (``pg_advisory_lock``) on a connection of the claim's own, keyed like a named lock;
on SQLite an exclusive ``flock`` of a file named after the claim in a ``.claims`` directory beside
the database. Either is let go by the server or the kernel when its process dies, so a SIGKILL
never leaves a run claimed; a second claimant waits for it.

Audit entries are collected as the repositories change records and written in one bulk insert
when the unit of work commits (or when the trail is read inside it).
"""

from __future__ import annotations

import fcntl
import hashlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import psycopg
import psycopg.sql
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from rebal.adapters.storage import repositories as repo
from rebal.adapters.storage import runs as run_repo
from rebal.adapters.storage.database import connect, create_engine, parse_url, shown
from rebal.adapters.storage.migrate import check_current
from rebal.adapters.storage.outbox import SqlOutbox
from rebal.adapters.storage.policies import SqlPolicies
from rebal.adapters.storage.realised import SqlRealised
from rebal.adapters.storage.tables import audit_log
from rebal.domain.audit import AuditAction, Entity, record_json
from rebal.domain.ids import DEFAULT_FIRM, FirmId
from rebal.ports.clock import Clock
from rebal.ports.storage import SchemaNotCurrent, StoreError, StoreUnavailable

#: From how many rows an insert on PostgreSQL goes through COPY.
COPY_FROM = 50


class SqlStore:
    """A :class:`rebal.ports.storage.Store` on a SQLite or PostgreSQL database."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self._clock = clock

    @classmethod
    def open(cls, url: str, clock: Clock) -> SqlStore:
        """The store at ``url``, checked to have the schema this rebal knows (else
        :class:`~rebal.ports.storage.SchemaNotCurrent` saying to run ``rebal db init``)."""
        parsed = parse_url(url)
        if parsed.get_backend_name() == "sqlite" and not Path(str(parsed.database)).exists():
            raise SchemaNotCurrent(
                f"there is no database at {shown(parsed)} yet: run `rebal db init` first"
            )
        engine = create_engine(parsed)
        try:
            check_current(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, clock)

    def unit_of_work(
        self, *, actor: str, reason: str, firm: FirmId = DEFAULT_FIRM
    ) -> SqlUnitOfWork:
        """A unit of work of ``firm``; its transaction begins when the ``with`` block is
        entered."""
        return SqlUnitOfWork(self.engine, self._clock, firm=firm, actor=actor, reason=reason)

    @contextmanager
    def claim(self, name: str) -> Iterator[None]:
        """Hold the claim ``name`` until the block ends (see the module docstring), waiting for
        another holder to let go."""
        if not name:
            raise ValueError("a claim needs a name")
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                key = sa.text(
                    "hashtextextended(current_schema() || '/claim/' || :name, 0)"
                ).bindparams(name=name)
                conn.execute(sa.select(sa.func.pg_advisory_lock(key)))
                try:
                    yield
                finally:
                    conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
            return
        database = self.engine.url.database
        if not database or database == ":memory:":
            with _process_claim(f"{id(self.engine)}/{name}"):
                yield
            return
        folder = Path(f"{database}.claims")
        folder.mkdir(exist_ok=True)
        digest = hashlib.sha256(name.encode()).hexdigest()[:32]
        with open(folder / f"{digest}.lock", "a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)  # let go when the file closes or the process dies
            try:
                yield
            finally:
                fcntl.flock(held, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


_CLAIMS: dict[str, threading.Lock] = {}
_CLAIMS_LOCK = threading.Lock()


@contextmanager
def _process_claim(name: str) -> Iterator[None]:
    """A claim among this process's threads (a database in memory has no other process)."""
    with _CLAIMS_LOCK:
        held = _CLAIMS.setdefault(name, threading.Lock())
    with held:
        yield


class SqlUnitOfWork:
    """A :class:`rebal.ports.storage.UnitOfWork`: one transaction on one connection."""

    def __init__(
        self, engine: Engine, clock: Clock, *, firm: FirmId, actor: str, reason: str
    ) -> None:
        self._engine = engine
        self._clock = clock
        self.firm = firm
        self.actor = actor
        self.reason = reason
        self.now = datetime.min.replace(tzinfo=UTC)
        self._connection: sa.Connection | None = None
        self._audit: list[dict[str, Any]] = []
        self.firms = repo.SqlFirms(self)
        self.models = repo.SqlModels(self)
        self.accounts = repo.SqlAccounts(self)
        self.holdings = repo.SqlHoldings(self)
        self.prices = repo.SqlPrices(self)
        self.cash_flows = repo.SqlCashFlows(self)
        self.proposals = repo.SqlProposals(self)
        self.audit = repo.SqlAudit(self)
        self.runs = run_repo.SqlRuns(self)
        self.orders = run_repo.SqlOrders(self)
        self.fills = run_repo.SqlFills(self)
        self.realised = SqlRealised(self)
        self.outbox = SqlOutbox(self)
        self.policies = SqlPolicies(self)

    def __enter__(self) -> Self:
        self._connection = connect(self._engine)
        try:
            self._connection.begin()
            self.now = self._clock.now().astimezone(UTC)
        except BaseException as exc:
            self._connection.close()
            self._connection = None
            if isinstance(exc, sa.exc.OperationalError):  # busy past the timeout, or gone
                raise StoreUnavailable(
                    f"cannot begin a transaction on {shown(self._engine.url)}: "
                    f"{str(exc.orig).strip()}"
                ) from None
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._connection is not None:
            self.rollback()

    @property
    def connection(self) -> sa.Connection:
        """The unit of work's connection; only inside its ``with`` block."""
        if self._connection is None:
            raise StoreError("a unit of work is used inside its `with` block, before it ends")
        return self._connection

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    def lock(self, name: str) -> None:
        """Wait for and hold the named lock until the unit of work ends."""
        if not name:
            raise ValueError("a lock needs a name")
        if self.dialect == "postgresql":
            self.connection.execute(
                sa.text(
                    "SELECT pg_advisory_xact_lock("
                    "hashtextextended(current_schema() || '/' || :firm || '/' || :name, 0))"
                ),
                {"firm": self.firm, "name": name},
            )
        else:
            _ = self.connection  # BEGIN IMMEDIATE holds the database's write lock already

    def record(
        self, action: AuditAction, entity: Entity, key: str, before: object, after: object
    ) -> None:
        """Note one change for the audit trail (written at commit)."""
        self._audit.append(
            {
                "firm_id": self.firm,
                "at": self.now,
                "actor": self.actor,
                "reason": self.reason,
                "action": action.value,
                "entity": entity.value,
                "key": key,
                "before": None if before is None else record_json(before),
                "after": None if after is None else record_json(after),
            }
        )

    def flush_audit(self) -> None:
        """Write the noted audit entries."""
        if self._audit:
            self.insert(audit_log, self._audit)
            self._audit = []

    def commit(self) -> None:
        """Write the audit trail and commit the transaction; the unit of work is then over."""
        connection = self.connection
        try:
            self.flush_audit()
            connection.commit()
        finally:
            self._end()

    def rollback(self) -> None:
        """Roll the transaction back; the unit of work is then over."""
        try:
            self.connection.rollback()
        finally:
            self._end()

    def _end(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = None
        self._audit = []

    def insert(self, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert ``rows`` (each naming the same columns) in bulk: ``COPY`` on PostgreSQL for
        more than a few rows (tens of thousands of rows in a fraction of a second), one
        ``executemany`` on SQLite. Integrity errors as in :meth:`execute`."""
        if self.dialect != "postgresql" or len(rows) < COPY_FROM:
            self.execute(sa.insert(table), rows)
            return
        columns = list(rows[0])
        dialect = self._engine.dialect
        convert = [table.c[name].type.bind_processor(dialect) for name in columns]
        command = psycopg.sql.SQL("COPY {} ({}) FROM STDIN").format(
            psycopg.sql.Identifier(table.name),
            psycopg.sql.SQL(", ").join(map(psycopg.sql.Identifier, columns)),
        )
        raw = self.connection.connection.dbapi_connection
        assert isinstance(raw, psycopg.Connection)
        try:
            with raw.cursor() as cursor, cursor.copy(command) as copy:
                for row in rows:
                    copy.write_row(
                        [
                            row[name] if f is None else f(row[name])
                            for name, f in zip(columns, convert, strict=True)
                        ]
                    )
        except psycopg.IntegrityError as exc:
            raise repo.integrity_error(exc) from None

    def execute(self, statement: Any, rows: Sequence[Mapping[str, Any]] | None = None) -> Any:
        """Run ``statement`` (for each of ``rows``, in one batch); integrity errors become the
        port's :class:`~rebal.ports.storage.Conflict` / :class:`~rebal.ports.storage.NotFound`."""
        try:
            if rows is None:
                return self.connection.execute(statement)
            if rows:
                return self.connection.execute(statement, list(rows))
            return None
        except sa.exc.IntegrityError as exc:
            raise repo.integrity_error(exc) from None
