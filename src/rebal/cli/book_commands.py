"""`rebal drift` and `rebal propose`: the book commands.

Both read the four tables (or the sample book), run the core and print a Rich report, or JSON or
CSV for programs. Input errors print every problem found, name file, line and column, and exit
with status 1 without writing anything.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from enum import Enum, StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rebal.adapters.executors.threads import ThreadExecutor
from rebal.cli import tax_options as tx
from rebal.cli.common import err, fail
from rebal.cli.render import render_drift, render_proposal
from rebal.clock import trade_date_today
from rebal.core.policies import POLICIES
from rebal.domain.formatting import money_text, number_text, quantity_text
from rebal.errors import InputError
from rebal.io.atomic import write_chunks_atomic
from rebal.io.book_arrays import FlowError
from rebal.io.csvfiles import read_tables
from rebal.io.tables import Tables
from rebal.proposal_output import document_chunks, positions_frame, status_labels, trades_frame
from rebal.proposing import drift_tables, propose_tables
from rebal.services.requests import (
    DEFAULT_MIN_TRADE,
    DEFAULT_POLICY,
    Bands,
    DriftRequest,
    ProposeRequest,
    RequestError,
)


class OutputFormat(StrEnum):
    """How results are printed."""

    table = "table"
    json = "json"
    csv = "csv"


PolicyName = Enum("PolicyName", {name.replace("-", "_"): name for name in POLICIES}, type=str)  # type: ignore[misc]

ModelsOpt = Annotated[Path | None, typer.Option("--models", help="models.csv: model,symbol,weight")]
AccountsOpt = Annotated[
    Path | None, typer.Option("--accounts", help="accounts.csv: account,model,cash")
]
HoldingsOpt = Annotated[
    Path | None, typer.Option("--holdings", help="holdings.csv: account,symbol,quantity")
]
PricesOpt = Annotated[Path | None, typer.Option("--prices", help="prices.csv: symbol,price")]
SampleOpt = Annotated[
    bool, typer.Option("--sample", help="Use the sample book shipped with rebal instead of files.")
]
BandAbsOpt = Annotated[
    str | None, typer.Option("--band-abs", help="Absolute band, percentage points (e.g. 5).")
]
BandRelOpt = Annotated[
    str | None, typer.Option("--band-rel", help="Relative band, percent of target (default 20).")
]
RailAbsOpt = Annotated[
    str | None, typer.Option("--rail-abs", help="Absolute inner rail (default: half the band).")
]
RailRelOpt = Annotated[
    str | None, typer.Option("--rail-rel", help="Relative inner rail (default: half the band).")
]
CashReserveOpt = Annotated[
    str,
    typer.Option(
        "--cash-reserve",
        help="Percent of account value kept in cash; targets are scaled down to leave it.",
    ),
]
FormatOpt = Annotated[OutputFormat, typer.Option("--format", help="table, json or csv.")]
OutputOpt = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write to this file (atomically).")
]


#: Request keywords the command line spells otherwise than ``--keyword-with-dashes``.
_OPTION_NAMES = {
    "all_accounts": "--all",
    "deposits": "--deposit",
    "withdrawals": "--withdraw",
    "withdrawal_dates": "--withdrawal-date",
}


def option_name(keyword: str) -> str:
    """The command-line option of a request's keyword (``band_abs`` → ``--band-abs``)."""
    return _OPTION_NAMES.get(keyword, "--" + keyword.replace("_", "-"))


def refused(exc: RequestError) -> typer.Exit:
    """The exit for a request the use case refused, its options named as on the command line."""
    return fail(exc.spelled(option_name))


_FLOW = re.compile(r"^\s*(?P<account>[^=]+?)\s*=\s*(?P<amount>[0-9][0-9,]*(\.[0-9]{1,2})?)\s*$")


def _flows(option: str, items: list[str]) -> dict[str, Decimal]:
    """``ACCOUNT=AMOUNT`` items of ``option`` as amounts per account (repeats add up)."""
    flows: dict[str, Decimal] = {}
    for item in items:
        match = _FLOW.match(item)
        if not match:
            raise fail(f"{option} {item!r}: expected ACCOUNT=AMOUNT, e.g. ACC-1=2500.00")
        amount = Decimal(match["amount"].replace(",", ""))
        flows[match["account"]] = flows.get(match["account"], Decimal(0)) + amount
    return flows


def _read(
    models: Path | None,
    accounts: Path | None,
    holdings: Path | None,
    prices: Path | None,
    sample: bool,
) -> tuple[Tables, str]:
    """Read and validate the four tables (or the sample book); also the holdings file name."""
    paths = {"--models": models, "--accounts": accounts, "--holdings": holdings, "--prices": prices}
    if sample:
        if any(paths.values()):
            raise fail("--sample replaces the four files; give one or the other")
        root = resources.files("rebal") / "data" / "sample"
        models, accounts, holdings, prices = (
            Path(str(root / name))
            for name in ("models.csv", "accounts.csv", "holdings.csv", "prices.csv")
        )
    else:
        missing = [option for option, path in paths.items() if path is None]
        if missing:
            raise fail(f"missing {', '.join(missing)} (or use --sample for the sample book)")
    assert models and accounts and holdings and prices
    with err.status("Reading and validating the book..."):
        try:
            return read_tables(models, accounts, holdings, prices), holdings.name
        except InputError as exc:
            raise fail(f"the book has problems; nothing was written:\n{exc}") from None


@contextmanager
def _progress(what: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on standard error, updated by the callback yielded."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task(what, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


def _emit(text: str | Iterable[str], output: Path | None) -> None:
    chunks = (text,) if isinstance(text, str) else text
    if output is None:
        for chunk in chunks:
            sys.stdout.write(chunk)
    else:
        write_chunks_atomic(output, chunks)
        err.print(f"wrote {output}")


#: The columns of `propose --format csv`: the order, then what a broker needs to enter it.
PROPOSE_CSV = (
    "account",
    "symbol",
    "side",
    "quantity",
    "amount",
    "model",
    "status",
    "price",
    "order_type",
)


def drift_command(
    models: ModelsOpt = None,
    accounts: AccountsOpt = None,
    holdings: HoldingsOpt = None,
    prices: PricesOpt = None,
    sample: SampleOpt = False,
    band_abs: BandAbsOpt = None,
    band_rel: BandRelOpt = None,
    rail_abs: RailAbsOpt = None,
    rail_rel: RailRelOpt = None,
    cash_reserve: CashReserveOpt = "0",
    output_format: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
) -> None:
    """Show the drift and status of every account against its model."""
    try:
        request = DriftRequest(
            bands=Bands(band_abs, band_rel, rail_abs, rail_rel), cash_reserve=cash_reserve
        )
    except RequestError as exc:
        raise refused(exc) from None
    tables, _ = _read(models, accounts, holdings, prices, sample)
    with _progress("Measuring drift") as on_progress:
        drifted = drift_tables(request, tables, ThreadExecutor(), on_progress)
    book, result = drifted.book, drifted.proposal
    if output_format is OutputFormat.json:
        _emit(document_chunks(book, result, include_trades=False), output)
    elif output_format is OutputFormat.csv:
        frame = positions_frame(book, result)
        frame.insert(2, "status", status_labels(result)[frame["row"]])
        frame["quantity"] = frame.pop("quantity_exact").map(number_text)
        frame = frame.drop(columns="quantity_micro")
        # Exact decimals in plain digits: the price as written, the value in cents.
        frame["price"] = frame["price"].map(lambda d: "" if d is None else number_text(d))
        frame["value"] = frame["value"].map(lambda d: "" if d is None else number_text(d, 2))
        _emit(frame.drop(columns=["row", "weight_after"]).to_csv(index=False), output)
    else:
        render_drift(book, result, output)


def propose_command(
    models: ModelsOpt = None,
    accounts: AccountsOpt = None,
    holdings: HoldingsOpt = None,
    prices: PricesOpt = None,
    sample: SampleOpt = False,
    policy: Annotated[
        PolicyName, typer.Option("--policy", help="What to trade to.")
    ] = DEFAULT_POLICY,  # type: ignore[assignment]
    band_abs: BandAbsOpt = None,
    band_rel: BandRelOpt = None,
    rail_abs: RailAbsOpt = None,
    rail_rel: RailRelOpt = None,
    wide_band_abs: Annotated[
        str | None, typer.Option(help="Tiered: absolute wide band (default: twice the band).")
    ] = None,
    wide_band_rel: Annotated[
        str | None, typer.Option(help="Tiered: relative wide band (default: twice the band).")
    ] = None,
    whole_shares: Annotated[
        bool, typer.Option("--whole-shares", help="Round to whole shares (default: 6 decimals).")
    ] = False,
    min_trade: Annotated[
        str, typer.Option("--min-trade", help="Drop trades smaller than this amount.")
    ] = format(DEFAULT_MIN_TRADE.normalize(), "f"),
    cash_reserve: CashReserveOpt = "0",
    all_accounts: Annotated[
        bool, typer.Option("--all", help="Consider every account, not only those needing action.")
    ] = False,
    net: Annotated[bool, typer.Option("--net", help="Net buys and sells per symbol.")] = False,
    deposit: Annotated[
        list[str], typer.Option("--deposit", help="ACCOUNT=AMOUNT to invest (repeatable).")
    ] = [],  # noqa: B006 - Typer reads the default, never mutates it
    withdraw: Annotated[
        list[str], typer.Option("--withdraw", help="ACCOUNT=AMOUNT to raise (repeatable).")
    ] = [],  # noqa: B006
    output_format: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
    tax_aware: tx.TaxAwareOpt = False,
    lot_method: tx.LotMethodOpt = tx.LotMethod.MIN_TAX,
    gain_budget: tx.GainBudgetOpt = None,
    no_short_term_gains: tx.NoShortTermOpt = False,
    tlh: tx.TlhOpt = False,
    substitutes: tx.SubstitutesOpt = None,
    household: tx.HouseholdOpt = False,
    optimizer: tx.OptimizerOpt = tx.Optimizer.rules,
    st_rate: tx.StRateOpt = tx.DEFAULT_ST_RATE,
    lt_rate: tx.LtRateOpt = tx.DEFAULT_LT_RATE,
    state_rate: tx.StateRateOpt = tx.DEFAULT_STATE_RATE,
    transactions: tx.TransactionsOpt = None,
    as_of: tx.AsOfOpt = None,
    tax_inefficient: tx.TaxInefficientOpt = None,
    drift_cost: tx.DriftCostOpt = None,
    withdrawal_date: tx.WithdrawalDateOpt = [],  # noqa: B006 - read, never mutated
    hold_before_withdrawal: tx.HoldDaysOpt = tx.DEFAULT_HOLD_DAYS,
) -> None:
    """Propose the trades that bring accounts back to their models."""
    try:
        request = ProposeRequest(
            policy=str(policy.value),
            bands=Bands(band_abs, band_rel, rail_abs, rail_rel, wide_band_abs, wide_band_rel),
            whole_shares=whole_shares,
            min_trade=min_trade,
            cash_reserve=cash_reserve,
            all_accounts=all_accounts,
            deposits=_flows("--deposit", deposit),
            withdrawals=_flows("--withdraw", withdraw),
            tax_aware=tax_aware,
            tax=tx.tax_options(
                fail,
                tax_aware=tax_aware,
                lot_method=lot_method,
                gain_budget=gain_budget,
                no_short_term_gains=no_short_term_gains,
                tlh=tlh,
                substitutes=substitutes,
                household=household,
                optimizer=optimizer,
                rates=(st_rate, lt_rate, state_rate),
                transactions=transactions,
                as_of=as_of,
                tax_inefficient=tax_inefficient,
                drift_cost=drift_cost,
                withdrawal_dates=withdrawal_date,
                hold_days=hold_before_withdrawal,
            ),
        )
        today = trade_date_today() if tax_aware and as_of is None else date.min
        if transactions is not None:
            tx.check_history(fail, request, transactions.name, today)
    except RequestError as exc:
        raise refused(exc) from None
    tables, holdings_name = _read(models, accounts, holdings, prices, sample)
    what = "Proposing tax-aware trades" if tax_aware else "Proposing trades"
    try:
        with _progress(what) as on_progress:
            proposed = propose_tables(
                request, tables, today, ThreadExecutor(), on_progress, holdings_name
            )
    except InputError as exc:
        raise fail(f"the input has problems; nothing was written:\n{exc}") from None
    except FlowError as exc:
        raise fail(str(exc)) from None
    book, result, taxed = proposed.book, proposed.proposal, proposed.tax
    if output_format is OutputFormat.json:
        _emit(document_chunks(book, result, include_trades=True, net=net, tax=taxed), output)
    elif output_format is OutputFormat.csv:
        trades = trades_frame(book, result)
        trades["quantity"] = trades["quantity_micro"].map(quantity_text)
        trades["amount"] = trades["amount_cents"].map(money_text)
        trades["price"] = trades["price"].map(number_text)
        _emit(trades[list(PROPOSE_CSV)].to_csv(index=False), output)
    else:
        render_proposal(book, result, output, net=net, tax=taxed)
