"""`rebal broker open`: bring the book's accounts to the simulated broker.

Each open account of the store's book that the simulated broker does not keep yet is opened as a
transfer-in of exactly the book's cash and shares (:mod:`rebal.services.broker_openings`), so
that the book and the broker reconcile before anything trades. An account already open at the
broker is left as it is (safe to repeat). The simulated broker keeps no overdrafts: an account
whose cash is negative in the book is not opened, and is named. docs/broker.md documents it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from rebal.cli.common import err, fail
from rebal.cli.db import DbOpt, FirmOpt
from rebal.cli.reconcile import BrokerConfigOpt, read_book, simulated_broker
from rebal.clock import SystemClock
from rebal.domain.ids import DEFAULT_FIRM, AccountId
from rebal.services.broker_openings import open_from_book


def _instant(text: str | None) -> datetime:
    if text is None:
        return SystemClock().now()
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise fail(f"--as-of {text!r} is not an ISO 8601 instant (2026-11-24T15:00:00Z)") from None
    if at.tzinfo is None:
        raise fail(f"--as-of {text!r} has no time zone: give one (Z, +00:00, -05:00)")
    return at


def open_command(
    account: Annotated[
        str | None,
        typer.Option(
            "--account", help="Only this account (default: every open account).", show_default=False
        ),
    ] = None,
    db: DbOpt = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="When the accounts arrive at the simulated market (ISO "
            "8601 with a time zone; default: now).",
            show_default=False,
        ),
    ] = None,
    broker_config: BrokerConfigOpt = None,
    firm: FirmOpt = DEFAULT_FIRM,
) -> None:
    """Open the book's accounts at the simulated broker with the book's cash and shares."""
    at = _instant(as_of)
    url, book, quotes = read_book(db, firm)
    if account is not None:
        if AccountId(account) not in book:
            raise fail(f"unknown account {account}: the book has no such open account")
        book = {AccountId(account): book[AccountId(account)]}
    overdrawn = [a for a, h in book.items() if h.cash < 0]
    if account is not None and overdrawn:
        raise fail(
            f"account {account} has negative cash ({book[overdrawn[0]].cash}): the "
            "simulated broker keeps no overdrafts"
        )
    sim = simulated_broker(url, at, quotes, broker_config)
    try:
        opened = open_from_book(sim, {a: h for a, h in book.items() if h.cash >= 0})
    finally:
        sim.close()
    kept = len(book) - len(overdrawn) - len(opened)
    typer.echo(
        f"opened {len(opened):,} account(s) at the simulated broker with the book's cash "
        f"and shares; {kept:,} already open"
    )
    if overdrawn:
        err.print(
            f"not opened, negative cash (the simulated broker keeps no overdrafts): "
            f"{', '.join(overdrawn)}",
            highlight=False,
            markup=False,
        )
