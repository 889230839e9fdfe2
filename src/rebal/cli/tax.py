"""`rebal wash-sales`: the wash-sale calculator over a transaction history file.

Prints every lot part sold (Form 8949 lines, with the W adjustment), every wash-sale match, the
lots left with their adjusted basis and holding period, and per-account totals; as a Rich table,
JSON or CSV (the Form 8949 lines). The file format is described in `rebal.tax.transactions`
and docs/tax.md. Bad input prints every problem (file, line, column) and exits with status 1.
"""

from __future__ import annotations

import csv
import io
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rebal.cli.book_commands import OutputFormat, refused
from rebal.cli.common import EXIT_BAD_INPUT, err
from rebal.domain.formatting import number_text
from rebal.errors import InputError
from rebal.io.atomic import write_text_atomic
from rebal.io.exact_json import exact_json
from rebal.services.requests import RequestError, WashSalesRequest
from rebal.services.usecases import wash_sales
from rebal.tax.lots import Term
from rebal.tax.money import ZERO, money_shown, shares_shown, to_cents
from rebal.tax.transactions import read_transactions
from rebal.tax.wash_sales import Disposal, HistoryError, WashSaleResult

DISPOSAL_COLUMNS = (
    "household",
    "account",
    "account_type",
    "symbol",
    "lot_id",
    "quantity",
    "bought",
    "acquired",
    "sold",
    "proceeds",
    "basis",
    "adjustment_code",
    "adjustment",
    "gain",
    "term",
    "split_from",
)


def wash_sales_command(
    transactions: Annotated[
        Path,
        typer.Option(
            "--transactions",
            help="CSV: date,account,household,account_type,symbol,side,quantity,price"
            "[,amount][,lot_id] (see docs/tax.md).",
        ),
    ],
    identical: Annotated[
        list[str] | None,
        typer.Option(
            "--identical",
            help="Symbols that are substantially identical, comma-separated, e.g. GOOG,GOOGL "
            "(repeatable).",
        ),
    ] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="table, json or csv.")
    ] = OutputFormat.table,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (atomically).")
    ] = None,
) -> None:
    """Find wash sales in a household's transaction history (IRS Pub 550 rules)."""
    try:
        history = read_transactions(transactions)
        result = wash_sales(WashSalesRequest(history, tuple(identical or ())))
    except InputError as exc:
        err.print(f"[bold red]error:[/] the transactions have problems:\n{exc}", highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except HistoryError as exc:
        err.print(f"[bold red]error:[/] {transactions.name} {exc}", highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except RequestError as exc:  # a symbol in two --identical groups
        raise refused(exc) from None
    if output_format is OutputFormat.json:
        text = exact_json(wash_sales_document(result)) + "\n"
    elif output_format is OutputFormat.csv:
        text = _disposals_csv(result)
    else:
        console = Console(record=True, width=150, file=io.StringIO())
        _print_tables(console, result)
        text = console.export_text()
    if output is None:
        sys.stdout.write(text)
    else:
        write_text_atomic(output, text)
        err.print(f"wrote {output}")


def _money(amount: Decimal) -> Decimal:
    """Money as exact cents (a Decimal: exact in JSON and CSV)."""
    return to_cents(amount)


def _account_totals(result: WashSaleResult) -> list[dict[str, Any]]:
    """Realised short/long-term gain and disallowed losses per taxable account."""
    totals: dict[tuple[str, str], dict[str, Decimal]] = defaultdict(
        lambda: defaultdict(lambda: ZERO)
    )
    for d in result.disposals:
        if d.account_type.taxable:
            entry = totals[(d.household, d.account)]
            entry["realized_st" if d.term is Term.SHORT else "realized_lt"] += d.gain
    for w in result.wash_sales:
        entry = totals[(w.household, w.sale_account)]
        entry["disallowed"] += w.disallowed
        if w.permanent:
            entry["permanently_disallowed"] += w.disallowed
    keys = ("realized_st", "realized_lt", "disallowed", "permanently_disallowed")
    return [
        {"household": h, "account": a, **{k: _money(totals[(h, a)][k]) for k in keys}}
        for h, a in sorted(totals)
    ]


def _disposal_row(d: Disposal) -> dict[str, Any]:
    """One Form 8949 line; money as cent-rounded Decimal (exact in CSV and JSON)."""
    return {
        "household": d.household,
        "account": d.account,
        "account_type": str(d.account_type),
        "symbol": d.symbol,
        "lot_id": d.lot_id,
        "quantity": number_text(d.quantity),
        "bought": d.bought.isoformat(),
        "acquired": d.acquired.isoformat(),
        "sold": d.sold.isoformat(),
        "proceeds": to_cents(d.proceeds),
        "basis": to_cents(d.basis),
        "adjustment_code": "W" if d.disallowed else "",
        "adjustment": to_cents(d.disallowed),
        "gain": to_cents(d.gain),
        "term": str(d.term),
        "split_from": d.split_from or "",
        "line": d.line,
    }


def wash_sales_document(result: WashSaleResult) -> dict[str, Any]:
    """The JSON document of a wash-sale run."""
    return {
        "total_disallowed": _money(result.total_disallowed),
        "permanently_disallowed": _money(result.permanently_disallowed),
        "accounts": _account_totals(result),
        "disposals": [_disposal_row(d) | {"split_from": d.split_from} for d in result.disposals],
        "wash_sales": [
            {
                "household": w.household,
                "sale_account": w.sale_account,
                "sale_symbol": w.sale_symbol,
                "sale_lot": w.sale_lot,
                "sold": w.sold.isoformat(),
                "quantity": number_text(w.quantity),
                "disallowed": _money(w.disallowed),
                "replacement_account": w.replacement_account,
                "replacement_symbol": w.replacement_symbol,
                "replacement_lot": w.replacement_lot,
                "replacement_bought": w.replacement_bought.isoformat(),
                "days_carried": w.days_carried,
                "permanent": w.permanent,
            }
            for w in result.wash_sales
        ],
        "open_lots": [
            {
                "household": lot.household,
                "account": lot.account,
                "symbol": lot.symbol,
                "lot_id": lot.lot_id,
                "quantity": number_text(lot.quantity),
                "basis": _money(lot.basis),
                "bought": lot.bought.isoformat(),
                "acquired": lot.acquired.isoformat(),
                "replacement": lot.replacement,
                "split_from": lot.split_from,
            }
            for lot in result.open_lots
        ],
    }


def _disposals_csv(result: WashSaleResult) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=DISPOSAL_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for d in result.disposals:
        writer.writerow(_disposal_row(d))
    return buffer.getvalue()


def _print_tables(console: Console, result: WashSaleResult) -> None:
    sales = Table(title="Sales (Form 8949 lines; W = wash-sale loss disallowed)")
    for column in ("line", "account", "symbol", "lot", "quantity", "acquired", "sold"):
        sales.add_column(column)
    for column in ("proceeds", "basis", "W adj.", "gain", "term"):
        sales.add_column(column, justify="right")
    for d in result.disposals:
        sales.add_row(
            str(d.line),
            d.account,
            d.symbol,
            d.lot_id,
            shares_shown(d.quantity),
            d.acquired.isoformat(),
            d.sold.isoformat(),
            money_shown(d.proceeds),
            money_shown(d.basis),
            money_shown(d.disallowed) if d.disallowed else "",
            money_shown(d.gain),
            str(d.term),
        )
    console.print(sales)
    washes = Table(title="Wash sales")
    for column in ("sale lot", "sold", "account", "symbol", "quantity", "disallowed"):
        washes.add_column(column)
    for column in ("replacement lot", "bought", "in account", "days carried", "note"):
        washes.add_column(column)
    for w in result.wash_sales:
        washes.add_row(
            w.sale_lot,
            w.sold.isoformat(),
            w.sale_account,
            w.sale_symbol,
            shares_shown(w.quantity),
            money_shown(w.disallowed),
            w.replacement_lot,
            w.replacement_bought.isoformat(),
            w.replacement_account,
            str(w.days_carried),
            "lost for good (IRA/Roth)" if w.permanent else "added to replacement basis",
        )
    console.print(washes if result.wash_sales else "No wash sales.")
    totals = Table(title="Per taxable account")
    for column in ("household", "account", "realised ST", "realised LT", "disallowed", "lost"):
        totals.add_column(column, justify="right" if column[0] in "rdl" else "left")
    for t in _account_totals(result):
        totals.add_row(
            t["household"],
            t["account"],
            *(
                money_shown(t[k])
                for k in ("realized_st", "realized_lt", "disallowed", "permanently_disallowed")
            ),
        )
    console.print(totals)
