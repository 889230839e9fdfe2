"""Rich tables for people: status counts, the accounts that need action, the blotter."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from rebal.core.engine import Proposal
from rebal.core.status import ACTIONABLE, Status
from rebal.domain.formatting import money_text, number_text, quantity_text
from rebal.io.atomic import write_text_atomic
from rebal.io.book_arrays import Book
from rebal.proposal_output import (
    account_values,
    blotter_frame,
    policy_labels,
    reasons,
    status_labels,
    trades_frame,
)
from rebal.tax_overlay import TaxAwareProposal

SHOWN_ACCOUNTS = 25
STYLE = {
    Status.NO_PORTFOLIO_ASSIGNED: "dim",
    Status.UNABLE_TO_CHECK: "magenta",
    Status.NEEDS_ATTENTION: "bold red",
    Status.LIQUIDATION: "red",
    Status.NEW_WITHDRAWAL: "yellow",
    Status.NEW_DEPOSIT: "cyan",
    Status.OUT_OF_TOLERANCE: "yellow",
    Status.INSIDE_TOLERANCE: "green",
}


def _console(output: Path | None) -> Console:
    # Reports written to a file or a pipe get a width that fits a reason on one line.
    wide = output is not None or not sys.stdout.isatty()
    return Console(record=output is not None, width=150 if wide else None)


def _finish(console: Console, output: Path | None) -> None:
    if output is not None:
        write_text_atomic(output, console.export_text())


def _status_table(book: Book, result: Proposal) -> Table:
    table = Table(title=f"{number_text(book.arrays.n_accounts, grouped=True)} accounts by status")
    table.add_column("status")
    table.add_column("accounts", justify="right")
    table.add_column("value", justify="right")
    counts = np.bincount(result.statuses.status, minlength=len(Status))
    value = dict.fromkeys(Status, Decimal(0))
    statuses = result.statuses.status.tolist()
    for status, total in zip(statuses, account_values(book, result), strict=True):
        if total is not None:
            value[Status(status)] += total
    for status in Status:
        table.add_row(
            f"[{STYLE[status]}]{status.label}[/]",
            number_text(int(counts[status]), grouped=True),
            number_text(value[status], 2, grouped=True),
        )
    return table


def _accounts_table(
    book: Book,
    result: Proposal,
    rows: np.ndarray,
    with_orders: bool,
    tax: TaxAwareProposal | None = None,
) -> Table:
    # Most urgent status first, then the largest accounts.
    order = np.lexsort((-np.nan_to_num(result.drift.total[rows]), result.statuses.status[rows]))
    rows = rows[order]
    shown = rows[:SHOWN_ACCOUNTS]
    more = len(rows) - len(shown)
    title = f"{number_text(len(rows), grouped=True)} accounts need action" + (
        f" (first {len(shown)}; --format json or csv for all)" if more else ""
    )
    table = Table(title=title)
    for name in ("account", "model", "status"):
        table.add_column(name, no_wrap=True)
    table.add_column("reason", ratio=1)
    table.add_column("value", justify="right", no_wrap=True)
    if with_orders:
        table.add_column("policy")
        table.add_column("orders", justify="right")
    if tax is not None:  # each account's realised gain (short + long term) and its tax
        table.add_column("realised", justify="right", no_wrap=True)
        table.add_column("est. tax", justify="right", no_wrap=True)
    labels = status_labels(result)
    sentences = dict(zip(shown, reasons(book, result, shown), strict=True))
    if tax is not None:  # what the tax layer changed, as in the JSON reason
        for i in shown:
            note = tax.annotation(int(i)).note
            if note:
                sentences[i] += f"; {note}"
    policies = policy_labels(result)
    ids = book.accounts["account"].to_numpy()
    models = book.accounts["model"].to_numpy()
    values = account_values(book, result)
    for i in shown:
        status = Status(int(result.statuses.status[i]))
        total = values[i]
        cells = [
            str(ids[i]),
            str(models[i]) or "-",
            f"[{STYLE[status]}]{labels[i]}[/]",
            sentences[i],
            "-" if total is None else number_text(total, 2, grouped=True),
        ]
        if with_orders:
            cells += [policies[i] or "-", number_text(int(result.trades.count[i]), grouped=True)]
        if tax is not None:
            cells += _tax_cells(tax.annotation(int(i)).tax)
        table.add_row(*cells)
    return table


def _tax_cells(report: dict[str, object]) -> list[str]:
    """Realised gain and estimated tax of one account's tax report ("-" when it has none)."""
    if "estimated_tax" not in report:
        return ["-", "-"]
    realised = Decimal(str(report["realized_st"])) + Decimal(str(report["realized_lt"]))
    tax = Decimal(str(report["estimated_tax"]))
    return [number_text(realised, 2, grouped=True), number_text(tax, 2, grouped=True)]


def render_drift(book: Book, result: Proposal, output: Path | None) -> None:
    """Print status counts and the accounts whose status calls for action."""
    console = _console(output)
    console.print(_status_table(book, result))
    action = np.flatnonzero(np.isin(result.statuses.status, [int(s) for s in ACTIONABLE]))
    console.print(_accounts_table(book, result, action, with_orders=False))
    _finish(console, output)


def render_proposal(
    book: Book,
    result: Proposal,
    output: Path | None,
    net: bool,
    tax: TaxAwareProposal | None = None,
) -> None:
    """Print status counts, the accounts with orders or needing attention, and the blotter."""
    console = _console(output)
    console.print(_status_table(book, result))
    attention = result.statuses.status == int(Status.NEEDS_ATTENTION)
    rows = np.flatnonzero(result.traded | attention)
    console.print(_accounts_table(book, result, rows, with_orders=True, tax=tax))
    trades = trades_frame(book, result)
    blotter = blotter_frame(trades, net)
    orders = number_text(len(trades), grouped=True)
    table = Table(title=f"Blotter{' (netted)' if net else ''}: {orders} orders")
    for name in ("symbol", "side", "quantity", "amount", "accounts"):
        table.add_column(name, justify="left" if name in ("symbol", "side") else "right")
    columns = ("symbol", "side", "quantity_micro", "amount_cents", "accounts")
    for symbol, side, micro, amount, accounts in zip(
        *(blotter[c].tolist() for c in columns), strict=True
    ):
        table.add_row(
            symbol,
            side,
            quantity_text(micro, grouped=True),
            money_text(amount, grouped=True),
            number_text(accounts, grouped=True),
        )
    console.print(table)
    if tax is not None:
        reports = [tax.annotation(int(i)).tax for i in np.flatnonzero(result.traded)]
        totals = {
            key: sum(Decimal(str(r[key])) for r in reports)
            for key in ("realized_st", "realized_lt", "estimated_tax")
        }
        shown = {key: number_text(total, 2, grouped=True) for key, total in totals.items()}
        console.print(
            f"Realised short-term {shown['realized_st']}, long-term {shown['realized_lt']}; "
            f"estimated tax {shown['estimated_tax']}."
        )
    dropped = int(result.trades.dropped.sum())
    if dropped:
        console.print(
            f"{number_text(dropped, grouped=True)} trades below the minimum trade were dropped."
        )
    _finish(console, output)
