"""`rebal broker orders|positions`: the simulated broker's own view, from its ledger.

What the counterparty recorded (the orders it received, their fills, each account's cash,
buying power and positions), read from its ``sim_*`` tables without moving its market on; the
book's view is rebal's own, and reconciliation compares the two. ``docs/broker.md`` documents
the JSON keys.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table

from rebal.adapters.brokers.simulated import LedgerMissing, SimulatedLedger
from rebal.cli.common import fail
from rebal.domain.ids import AccountId
from rebal.io.exact_json import exact_document
from rebal.ports.broker import BrokerOrder, UnknownAccount

#: Where the book and the simulated broker's ledger live unless --db or REBAL_DB says otherwise.
DEFAULT_DB = "sqlite:///rebal.db"


class ViewFormat(StrEnum):
    """How the broker's view is printed."""

    table = "table"
    json = "json"


AccountOpt = Annotated[
    str | None, typer.Option("--account", help="Only this account (default: every account).")
]
FormatOpt = Annotated[ViewFormat, typer.Option("--format", help="table or json.")]
DbOpt = Annotated[
    str,
    typer.Option(
        "--db",
        envvar="REBAL_DB",
        help="Database URL of the ledger (sqlite:///FILE or postgresql://...).",
    ),
]

broker_app = typer.Typer(
    no_args_is_help=True,
    help="The simulated broker's own view of its accounts, from its ledger.",
)


@contextmanager
def _ledger(url: str) -> Iterator[SimulatedLedger]:
    """The ledger at ``url``; every way of not reaching it is a clear error, exit 1."""
    try:
        ledger = SimulatedLedger.existing(url)
    except LedgerMissing as exc:
        raise fail(f"{exc} (the simulated broker creates it when a run first trades)") from None
    except sa.exc.ArgumentError as exc:
        raise fail(f"--db {url!r} is not a database URL: {exc}") from None
    except sa.exc.OperationalError as exc:
        raise fail(f"cannot open the database {url}: {exc.orig}") from None
    try:
        yield ledger
    except UnknownAccount as exc:
        raise fail(str(exc)) from None
    finally:
        ledger.engine.dispose()


def _accounts(ledger: SimulatedLedger, account: str | None) -> list[AccountId]:
    return [AccountId(account)] if account else ledger.accounts()


def _show(table: Table) -> None:
    # Piped or redirected, a row keeps its reason on one line.
    Console(width=None if sys.stdout.isatty() else 200).print(table)


def _count(n: int, thing: str) -> str:
    return f"{n:,} {thing}{'' if n == 1 else 's'}"


def _when(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _number(value: Decimal | None, money: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}" if money else f"{value:,f}"


def _order_row(o: BrokerOrder) -> dict[str, Any]:
    return {
        "client_order_id": o.client_order_id,
        "broker_order_id": o.broker_order_id,
        "account": o.account,
        "symbol": o.symbol,
        "side": o.side.value,
        "quantity": o.quantity,
        "notional": o.notional,
        "type": o.type.value,
        "limit_price": o.limit_price,
        "state": o.state.value,
        "filled_quantity": o.filled_quantity,
        "filled_avg_price": o.filled_avg_price,
        "filled_notional": o.filled_notional,
        "submitted_at": o.submitted_at,
        "updated_at": o.updated_at,
        "reason": o.reason,
    }


def orders_command(
    account: AccountOpt = None,
    output_format: FormatOpt = ViewFormat.table,
    db: DbOpt = DEFAULT_DB,
) -> None:
    """Every order the simulated broker received, oldest first, as it last stood."""
    with _ledger(db) as ledger:
        orders = ledger.orders(AccountId(account) if account else None)
    if output_format is ViewFormat.json:
        sys.stdout.write(exact_document("orders", [_order_row(o) for o in orders]))
        return
    table = Table(title=f"{_count(len(orders), 'order')} at the simulated broker")
    for name in ("submitted", "client order id", "account", "symbol", "side", "size", "type"):
        table.add_column(name, no_wrap=True)
    table.add_column("state", no_wrap=True)
    for name in ("filled", "avg price", "amount"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("reason", ratio=1)
    for o in orders:
        size = _number(o.quantity) if o.quantity is not None else f"${_number(o.notional, True)}"
        kind = o.type.value if o.limit_price is None else f"limit {_number(o.limit_price)}"
        table.add_row(
            _when(o.submitted_at),
            o.client_order_id,
            o.account,
            o.symbol,
            o.side.value,
            size,
            kind,
            o.state.value,
            _number(o.filled_quantity),
            _number(o.filled_avg_price),
            _number(o.filled_notional, money=True),
            o.reason,
        )
    _show(table)


def positions_command(
    account: AccountOpt = None,
    output_format: FormatOpt = ViewFormat.table,
    db: DbOpt = DEFAULT_DB,
) -> None:
    """Each account's cash, buying power and positions at the simulated broker."""
    with _ledger(db) as ledger:
        held = [(a, *ledger.holdings(a)) for a in _accounts(ledger, account)]
    if output_format is ViewFormat.json:
        rows = [
            {
                "account": a,
                "cash": cash,
                "buying_power": power,
                "positions": [{"symbol": s, "quantity": q} for s, q in positions.items()],
            }
            for a, cash, power, positions in held
        ]
        sys.stdout.write(exact_document("accounts", rows))
        return
    table = Table(title=f"{_count(len(held), 'account')} at the simulated broker")
    table.add_column("account", no_wrap=True)
    table.add_column("symbol", no_wrap=True)
    table.add_column("quantity", justify="right", no_wrap=True)
    for a, cash, power, positions in held:
        table.add_row(a, "cash", _number(cash, money=True))
        table.add_row("", "buying power", _number(power, money=True))
        for symbol, quantity in positions.items():
            table.add_row("", symbol, _number(quantity))
        table.add_section()
    _show(table)


broker_app.command("orders")(orders_command)
broker_app.command("positions")(positions_command)
