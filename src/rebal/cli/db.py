"""`rebal db init|import|export`: the persistent book.

``--db URL`` (else ``$REBAL_DB``, else ``sqlite:///rebal.db`` in the working directory) names
the store. ``init`` creates or migrates its schema; ``import`` validates the four tables exactly
as ``rebal propose`` does and stores them in one transaction (every problem listed by file, line
and column, exit 1, nothing written); ``export`` writes the stored book back as the four files.
See docs/store.md.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rebal.adapters.storage.database import create_engine, parse_url, resolve_url, shown
from rebal.adapters.storage.migrate import upgrade
from rebal.adapters.storage.types import PRECISION, QUANTITY
from rebal.adapters.storage.unit_of_work import SqlStore
from rebal.cli.book_commands import (
    AccountsOpt,
    HoldingsOpt,
    ModelsOpt,
    PricesOpt,
    SampleOpt,
    _read,
)
from rebal.cli.common import as_of_time, err, fail
from rebal.clock import SystemClock
from rebal.domain.account import Price, check_new_quotes
from rebal.domain.book import BookSnapshot
from rebal.domain.ids import DEFAULT_FIRM, FirmId
from rebal.domain.policy import InvestmentPolicy
from rebal.errors import InputError
from rebal.io.book_records import book_snapshot, too_many_shares, write_book
from rebal.io.policies import read_policies, write_policies
from rebal.ports.storage import StoreError
from rebal.services.book import STEPS, ImportSummary, export_book, import_book

db_app = typer.Typer(
    no_args_is_help=True,
    help="The persistent book: create the store, import the four tables into it, export them.",
)

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (default: $REBAL_DB, else sqlite:///rebal.db here).",
        show_default=False,
    ),
]
FirmOpt = Annotated[str, typer.Option("--firm", help="The firm (tenant) of the book.")]


def _url(db: str | None) -> str:
    try:
        return parse_url(resolve_url(db, os.environ)).render_as_string(hide_password=False)
    except StoreError as exc:
        raise fail(str(exc)) from None


@contextmanager
def _store(db: str | None) -> Iterator[SqlStore]:
    try:
        store = SqlStore.open(_url(db), SystemClock())
    except StoreError as exc:
        raise fail(str(exc)) from None
    try:
        yield store
    except StoreError as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()


@db_app.command("init")
def init_command(db: DbOpt = None) -> None:
    """Create the store's schema, or migrate it to this rebal's; safe to repeat."""
    engine = create_engine(_url(db))
    where = shown(engine.url)
    try:
        done = upgrade(engine)
    except StoreError as exc:
        raise fail(str(exc)) from None
    finally:
        engine.dispose()
    if done.before is None:
        typer.echo(f"created the rebal schema (revision {done.after}) in {where}")
    elif done.changed:
        typer.echo(f"migrated {where} from revision {done.before} to {done.after}")
    else:
        typer.echo(f"{where} already has the latest schema (revision {done.after})")


@db_app.command("import")
def import_command(
    models: ModelsOpt = None,
    accounts: AccountsOpt = None,
    holdings: HoldingsOpt = None,
    prices: PricesOpt = None,
    sample: SampleOpt = False,
    policies: Annotated[
        Path | None,
        typer.Option(
            "--policies",
            help="policies.csv: each account's investment policy "
            "(docs/scheduler.md); alone, for the book already stored.",
            show_default=False,
        ),
    ] = None,
    db: DbOpt = None,
    firm: FirmOpt = DEFAULT_FIRM,
    actor: Annotated[
        str | None,
        typer.Option(
            "--actor", help="Who imports, for the audit trail (default: $USER).", show_default=False
        ),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why, for the audit trail.", show_default=False)
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="When the imported prices are quoted (ISO 8601 with a time zone; "
            "default: the import's time).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Import the four tables (or the sample book) in one transaction.

    The store's book becomes the one given: a changed model is a new version, holdings and
    prices are replaced, accounts left out are closed. Bad input: every problem listed, exit
    1, nothing written. ``--policies`` stores the accounts' investment policies with it (the
    sample book brings its own), or alone for the stored book. ``--as-of`` stamps the prices
    with a given time instead of the import's (a run ``--as-of`` that time finds them fresh)."""
    quoted = None if as_of is None else as_of_time(as_of)
    book_given = sample or any(p is not None for p in (models, accounts, holdings, prices))
    if policies is not None and not book_given:
        _import_policies(policies, db, firm, actor, reason)
        return
    tables, holdings_file = _read(models, accounts, holdings, prices, sample)
    unstorable = too_many_shares(tables, holdings_file, 10 ** (PRECISION - QUANTITY.scale))
    if unstorable:
        raise fail(f"the book has problems; nothing was written:\n{InputError(unstorable)}")
    if policies is None and sample:
        policies = Path(str(resources.files("rebal") / "data" / "sample" / "policies.csv"))
    read = None if policies is None else _policies(policies, set(tables.accounts["account"]))
    given = (
        "the sample book"
        if sample
        else ", ".join(str(p) for p in (models, accounts, holdings, prices))
    )
    who = actor or _user()
    with (
        _store(db) as store,
        _progress() as step,
        store.unit_of_work(
            actor=who, reason=reason or f"rebal db import of {given}", firm=FirmId(firm)
        ) as uow,
    ):
        snapshot = book_snapshot(tables, uow.now if quoted is None else quoted)
        if quoted is not None:
            _check_quotes(snapshot, uow.prices.current())
        summary = import_book(uow, snapshot, step)
        changed = None if read is None else uow.policies.replace(read)
        step("commit")
        uow.commit()
    _report(summary, shown(store.engine.url), firm, quoted)
    if read is not None:
        typer.echo(f"  policies  {len(read):>7,}  {changed:,} created, changed or removed")


def _check_quotes(snapshot: BookSnapshot, current: Sequence[Price]) -> None:
    """``--as-of`` quotes no older than the store's current ones (history is recorded forwards);
    exit 1 before anything is written."""
    try:
        check_new_quotes(snapshot.prices, {q.symbol: q for q in current})
    except ValueError as exc:
        raise fail(f"--as-of: {exc}; nothing was written") from None


def _policies(path: Path, known: set[str]) -> list[InvestmentPolicy]:
    """The policies of ``path`` for the accounts ``known``; every problem listed, exit 1."""
    try:
        return read_policies(path, known)
    except InputError as exc:
        raise fail(f"the policies have problems; nothing was written:\n{exc}") from None


def _import_policies(
    path: Path, db: str | None, firm: str, actor: str | None, reason: str | None
) -> None:
    """``rebal db import --policies FILE`` alone: the policies of the stored book."""
    with (
        _store(db) as store,
        store.unit_of_work(
            actor=actor or _user(), reason=reason or f"rebal db import of {path}", firm=FirmId(firm)
        ) as uow,
    ):
        read = _policies(path, {a.id for a in uow.accounts.list()})
        changed = uow.policies.replace(read)
        uow.commit()
    typer.echo(f"imported into {shown(store.engine.url)} (firm {firm}):")
    typer.echo(f"  policies  {len(read):>7,}  {changed:,} created, changed or removed")


@contextmanager
def _progress() -> Iterator[Callable[[str], None]]:
    """A progress bar over the import's steps (and the commit); yields the step callback."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("importing", total=len(STEPS) + 1)
        seen: list[str] = []

        def step(name: str) -> None:
            progress.update(task, completed=len(seen), description=f"storing {name}")
            seen.append(name)

        yield step


def _user() -> str:
    """The audit's "who" when ``--actor`` is not given: the login name ($USER, ...)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _accounts(count: int) -> str:
    return f"{count:,} account{'' if count == 1 else 's'}"


def _report(summary: ImportSummary, where: str, firm: str, quoted: datetime | None) -> None:
    versions = ", ".join(summary.new_versions) or "none"
    retired = f", retired: {', '.join(summary.retired)}" if summary.retired else ""
    typer.echo(f"imported into {where} (firm {firm}):")
    typer.echo(f"  models    {summary.models:>7,}  new versions: {versions}{retired}")
    typer.echo(
        f"  accounts  {summary.accounts:>7,}  {summary.new_accounts:,} new, "
        f"{summary.changed_accounts:,} changed, {summary.closed_accounts:,} closed"
    )
    typer.echo(
        f"  holdings  {summary.holdings:>7,}  replaced in {_accounts(summary.holdings_changed)}"
    )
    when = "the import" if quoted is None else quoted.isoformat()
    typer.echo(f"  prices    {summary.prices:>7,}  quoted as of {when}")


@db_app.command("export")
def export_command(
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory for the four files.")],
    db: DbOpt = None,
    firm: FirmOpt = DEFAULT_FIRM,
) -> None:
    """Write the stored book as models.csv, accounts.csv, holdings.csv and prices.csv (and
    policies.csv when policies are stored)."""
    if output.exists() and not output.is_dir():
        raise fail(f"--output {output} is a file; give a directory")
    with (
        _store(db) as store,
        store.unit_of_work(actor=_user(), reason="rebal db export", firm=FirmId(firm)) as uow,
    ):
        if uow.firms.get(uow.firm) is None:
            raise fail(f"no firm {firm!r} in {shown(store.engine.url)} (import a book first)")
        book = export_book(uow)
        policies = uow.policies.all()
    written = write_book(output, book)
    if policies:
        written[output / "policies.csv"] = write_policies(output / "policies.csv", policies)
    for path, rows in written.items():
        typer.echo(f"wrote {path} ({rows:,} rows)")
