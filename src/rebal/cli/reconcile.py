"""`rebal reconcile`: rebal's book against the broker's record, account by account.

Reads the book from the store (one unit of work, nothing written), then asks the broker, through
its port, for each account's positions and settled cash, and lists every difference
(:mod:`rebal.services.reconcile`). Exit 0 when everything agrees exactly, 1 when anything does
not (or when reconciliation cannot run: the message says why). The simulated broker's market is
read as of its ledger's last activity, so reconciling does not move its clock on. JSON keys are
documented in docs/output.md.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

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
from rebal.cli.exact_json import exact_json
from rebal.domain.account import Price
from rebal.domain.ids import DEFAULT_FIRM, AccountId, FirmId
from rebal.ports.broker import BrokerError
from rebal.services.reconcile import (
    AccountReconciliation,
    Difference,
    Holdings,
    ReconcileError,
    Reconciliation,
    book_holdings,
    reconcile,
)


class BrokerName(StrEnum):
    """The brokers `rebal reconcile` can ask."""

    sim = "sim"


class ReconcileFormat(StrEnum):
    """How the reconciliation is printed."""

    table = "table"
    json = "json"


def _read_book(db: str | None, firm: str) -> tuple[str, dict[AccountId, Holdings], list[Price]]:
    """The store's URL, its open accounts' holdings and every quote of the symbols quoted now
    (the simulated broker prices anything it still has to fill from them)."""
    with (
        _store(db) as store,
        store.unit_of_work(actor=_user(), reason="rebal reconcile", firm=FirmId(firm)) as uow,
    ):
        if uow.firms.get(uow.firm) is None:
            raise fail(f"no firm {firm!r} in {shown(store.engine.url)} (import a book first)")
        book = book_holdings(uow)
        quotes = [q for p in uow.prices.current() for q in uow.prices.history(p.symbol)]
        return _url(db), book, quotes


def _simulated_broker(url: str, config: Path | None, quotes: list[Price]) -> SimulatedBroker:
    try:
        settings = load_settings(config) if config is not None else None
    except SettingsError as exc:
        raise fail(str(exc)) from None
    try:
        ledger = SimulatedLedger.existing(url)
    except LedgerMissing as exc:
        raise fail(f"{exc}: the simulated broker has no accounts to reconcile with") from None
    as_of = ledger.last_activity() or datetime.now(UTC)
    return SimulatedBroker(
        ledger.engine,
        clock=SimulatedClock(as_of),
        prices=InMemoryPrices(quotes),
        calendar=ExchangeCalendar.around(as_of),
        settings=settings,
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
    broker_config: Annotated[
        Path | None,
        typer.Option(
            "--broker-config",
            help="The simulated broker's settings (JSON or TOML).",
            show_default=False,
        ),
    ] = None,
    output_format: Annotated[
        ReconcileFormat, typer.Option("--format", help="table or json.")
    ] = ReconcileFormat.table,
    firm: FirmOpt = DEFAULT_FIRM,
) -> None:
    """Compare rebal's positions and cash with the broker's, per account; exit 1 on any
    difference."""
    url, book, quotes = _read_book(db, firm)
    sim = _simulated_broker(url, broker_config, quotes)
    try:
        result = reconcile(book, sim, AccountId(account) if account else None)
    except (ReconcileError, BrokerError) as exc:
        raise fail(str(exc)) from None
    finally:
        sim.close()
    if output_format is ReconcileFormat.json:
        sys.stdout.write(document(result, broker.value))
    else:
        _print_table(result)
    if not result.reconciled:
        raise typer.Exit(1)


# -- output --------------------------------------------------------------------------------


def _difference_row(d: Difference) -> dict[str, Any]:
    return {
        "kind": d.kind.value,
        "symbol": d.symbol,
        "book": d.book,
        "broker": d.broker,
        "difference": d.difference,
    }


def _account_row(a: AccountReconciliation) -> dict[str, Any]:
    return {
        "account": a.account,
        "reconciled": a.reconciled,
        "book_cash": None if a.book is None else a.book.cash,
        "broker_cash": None if a.broker is None else a.broker.cash,
        "differences": [_difference_row(d) for d in a.differences],
    }


def document(result: Reconciliation, broker: str) -> str:
    """The reconciliation as exact JSON, one account per line (docs/output.md)."""
    head = {
        "reconciled": result.reconciled,
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
    "missing_at_broker": "position missing at the broker",
    "missing_in_book": "position missing in the book",
    "quantity": "quantity differs",
    "cash": "cash differs",
    "account_missing_at_broker": "account missing at the broker",
    "account_missing_in_book": "account missing in the book",
}


def _print_table(result: Reconciliation) -> None:
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
            _WHAT[d.kind.value],
            d.symbol or "",
            _number(d.book),
            _number(d.broker),
            _number(d.difference),
        )
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    differing = sum(not a.reconciled for a in result.accounts)
    typer.echo(
        f"{differing:,} of {compared:,} account(s) do not reconcile "
        f"({len(result.differences):,} difference(s)){unopened}"
    )
