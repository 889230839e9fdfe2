"""`rebal reconcile`: rebal's book against the broker's record, account by account.

Reads the book from the store (one unit of work, nothing written), then asks the broker, through
its port, for each account's positions and settled cash, and lists every difference
(:mod:`rebal.services.reconcile`), and the allocation flags still standing (an account whose last
run left it more than 0.5 percentage points off the allocation intended). Exit 0 when everything
agrees exactly and nothing is flagged, 1 otherwise (or when reconciliation cannot run: the
message says why). Each account that does not reconcile gets a ``reconciliation.break`` alert in
the notifications outbox (once per distinct break). The simulated broker's market is
read as of its ledger's last activity, so reconciling does not move its clock on. JSON keys are
documented in docs/output.md.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table

from rebal.adapters.brokers.simulated import (
    LedgerMissing,
    SettingsError,
    SimulatedBroker,
    SimulatedLedger,
    load_settings,
)
from rebal.adapters.calendars.exchange import ExchangeCalendar
from rebal.adapters.memory.clock import SimulatedClock
from rebal.adapters.memory.prices import InMemoryPrices
from rebal.adapters.storage.database import shown
from rebal.cli.common import fail
from rebal.cli.db import DbOpt, FirmOpt, _store, _url, _user
from rebal.clock import SystemClock
from rebal.domain.account import Price
from rebal.domain.ids import DEFAULT_FIRM, AccountId, FirmId
from rebal.io.exact_json import exact_json
from rebal.ports.broker import BrokerError
from rebal.services.reconcile import (
    AccountReconciliation,
    Difference,
    DifferenceKind,
    Holdings,
    ReconcileError,
    Reconciliation,
    RunFlag,
    allocation_flags,
    book_holdings,
    reconcile,
)
from rebal.services.run_notices import CHANNELS, break_notices


class BrokerName(StrEnum):
    """The brokers `rebal reconcile` can ask."""

    sim = "sim"


BrokerConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--broker-config",
        help="The simulated broker's settings (JSON or TOML).",
        show_default=False,
    ),
]


class ReconcileFormat(StrEnum):
    """How the reconciliation is printed."""

    table = "table"
    json = "json"


def read_book(db: str | None, firm: str) -> tuple[str, dict[AccountId, Holdings], list[Price]]:
    """The store's URL, its open accounts' holdings and every quote of the symbols quoted now
    (what the simulated broker prices anything it still has to fill from), read in one unit of
    work that writes nothing and ends before the broker is asked anything (on SQLite a unit of
    work holds the database's write lock)."""
    with (
        _store(db) as store,
        store.unit_of_work(actor=_user(), reason="read the book", firm=FirmId(firm)) as uow,
    ):
        if uow.firms.get(uow.firm) is None:
            raise fail(f"no firm {firm!r} in {shown(store.engine.url)} (import a book first)")
        book = book_holdings(uow)
        quotes = [q for p in uow.prices.current() for q in uow.prices.history(p.symbol)]
        return _url(db), book, quotes


def read_flags(db: str | None, firm: str) -> list[RunFlag]:
    """The allocation flags still standing (:func:`~rebal.services.reconcile.allocation_flags`),
    read in a unit of work that writes nothing."""
    with (
        _store(db) as store,
        store.unit_of_work(actor=_user(), reason="read the flags", firm=FirmId(firm)) as uow,
    ):
        return allocation_flags(uow)


def alert_breaks(db: str | None, firm: str, result: Reconciliation) -> None:
    """Queue a ``reconciliation.break`` alert per account that does not reconcile (the same
    break found again queues nothing new: its id comes from its differences)."""
    notices = break_notices(result.accounts, SystemClock().now())
    if not notices:
        return
    with (
        _store(db) as store,
        store.unit_of_work(actor=_user(), reason="reconciliation breaks", firm=FirmId(firm)) as uow,
    ):
        for notice in notices:
            uow.outbox.add(notice, CHANNELS)
        uow.commit()


def simulated_broker(
    database: str | sa.Engine, as_of: datetime, quotes: list[Price], config: Path | None
) -> SimulatedBroker:
    """The simulated broker on ``database`` with its market's clock at ``as_of``, pricing from
    ``quotes``, with the settings of ``config`` (a bad file is one message, exit 1)."""
    try:
        settings = load_settings(config) if config is not None else None
    except SettingsError as exc:
        raise fail(str(exc)) from None
    return SimulatedBroker(
        database,
        clock=SimulatedClock(as_of),
        prices=InMemoryPrices(quotes),
        calendar=ExchangeCalendar.around(as_of),
        settings=settings,
    )


def _existing_broker(url: str, quotes: list[Price], config: Path | None) -> SimulatedBroker:
    """The simulated broker of the ledger at ``url``, as of its last activity (reading it does
    not move its market on); a database without a ledger is one message, exit 1."""
    try:
        ledger = SimulatedLedger.existing(url)
    except LedgerMissing as exc:
        raise fail(f"{exc}: the simulated broker has no accounts to reconcile with") from None
    return simulated_broker(
        ledger.engine, ledger.last_activity() or SystemClock().now(), quotes, config
    )


def reconcile_command(
    account: Annotated[
        str | None,
        typer.Option(
            "--account",
            help="Only this account (default: every account the broker keeps).",
            show_default=False,
        ),
    ] = None,
    db: DbOpt = None,
    broker: Annotated[
        BrokerName, typer.Option("--broker", help="The broker to reconcile with.")
    ] = BrokerName.sim,
    broker_config: BrokerConfigOpt = None,
    output_format: Annotated[
        ReconcileFormat, typer.Option("--format", help="table or json.")
    ] = ReconcileFormat.table,
    firm: FirmOpt = DEFAULT_FIRM,
) -> None:
    """Compare rebal's positions and cash with the broker's, per account; exit 1 on any
    difference."""
    url, book, quotes = read_book(db, firm)
    flags = read_flags(db, firm)
    sim = _existing_broker(url, quotes, broker_config)
    try:
        result = reconcile(book, sim, AccountId(account) if account else None)
    except (ReconcileError, BrokerError) as exc:
        raise fail(str(exc)) from None
    finally:
        sim.close()
    if account:
        flags = [f for f in flags if f.account == account]
    alert_breaks(db, firm, result)
    if output_format is ReconcileFormat.json:
        sys.stdout.write(document(result, broker.value, flags))
    else:
        _print_table(result, flags)
    if not result.reconciled or flags:
        raise typer.Exit(1)


# -- output --------------------------------------------------------------------------------


def _shown(d: Difference, value: Decimal | None) -> Decimal | None:
    """Cash keeps its cents; shares are written without trailing zeros (``10``, not the
    store's ``10.000000000``), the same number either way."""
    if value is None or d.kind is DifferenceKind.CASH:
        return value
    return value.normalize()


def _difference_row(d: Difference) -> dict[str, Any]:
    return {
        "kind": d.kind.value,
        "symbol": d.symbol,
        "book": _shown(d, d.book),
        "broker": _shown(d, d.broker),
        "difference": _shown(d, d.difference),
    }


def _account_row(a: AccountReconciliation) -> dict[str, Any]:
    return {
        "account": a.account,
        "reconciled": a.reconciled,
        "book_cash": None if a.book is None else a.book.cash,
        "broker_cash": None if a.broker is None else a.broker.cash,
        "differences": [_difference_row(d) for d in a.differences],
    }


def document(result: Reconciliation, broker: str, flags: Sequence[RunFlag] = ()) -> str:
    """The reconciliation as exact JSON, one account per line (docs/output.md)."""
    head = {
        "reconciled": result.reconciled,
        "allocation_flags": [
            {"account": f.account, "run": f.run, "reason": f.reason} for f in flags
        ],
        "broker": broker,
        "accounts_compared": len(result.accounts),
        "accounts_differing": sum(not a.reconciled for a in result.accounts),
        "differences": len(result.differences),
        "unopened": list(result.unopened),
    }
    rows = ",\n ".join(exact_json(_account_row(a)) for a in result.accounts)
    body = exact_json(head)[:-1]
    return body + ', "accounts": [' + (f"\n {rows}\n" if rows else "") + "]}\n"


def _number(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:,f}"


_WHAT = {
    DifferenceKind.MISSING_AT_BROKER: "position missing at the broker",
    DifferenceKind.MISSING_IN_BOOK: "position missing in the book",
    DifferenceKind.QUANTITY: "quantity differs",
    DifferenceKind.CASH: "cash differs",
    DifferenceKind.ACCOUNT_MISSING_AT_BROKER: "account missing at the broker",
    DifferenceKind.ACCOUNT_MISSING_IN_BOOK: "account missing in the book",
}


def _print_table(result: Reconciliation, flags: Sequence[RunFlag] = ()) -> None:
    for flag in flags:
        typer.echo(f"run {flag.run}: {flag.reason}")
    compared = len(result.accounts)
    unopened = (
        f"; {len(result.unopened):,} book account(s) not opened at the broker, not compared"
        if result.unopened
        else ""
    )
    if result.reconciled:
        typer.echo(
            f"{compared:,} account(s) reconcile: cash and every position agree exactly{unopened}"
        )
        return
    table = Table(title="differences between the book and the broker")
    table.add_column("account", no_wrap=True)
    table.add_column("what", no_wrap=True)
    table.add_column("symbol", no_wrap=True)
    for name in ("book", "broker", "broker - book"):
        table.add_column(name, justify="right", no_wrap=True)
    for d in result.differences:
        table.add_row(
            d.account,
            _WHAT[d.kind],
            d.symbol or "",
            _number(_shown(d, d.book)),
            _number(_shown(d, d.broker)),
            _number(_shown(d, d.difference)),
        )
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    differing = sum(not a.reconciled for a in result.accounts)
    typer.echo(
        f"{differing:,} of {compared:,} account(s) do not reconcile "
        f"({len(result.differences):,} difference(s)){unopened}"
    )
