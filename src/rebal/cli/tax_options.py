"""The `--tax-aware` options of `rebal propose`, and their translation into `TaxSettings`.

The options are declared here (Typer `Annotated` types) so the propose command only lists them;
`tax_options` reads the substitutes and transactions files and the dates given and returns the
options for :class:`rebal.services.requests.ProposeRequest`, which checks them (the same checks
and messages as the Python API).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from rebal.errors import InputError
from rebal.services import requests
from rebal.services.requests import ProposeRequest, TaxOptions
from rebal.tax.lots import LotMethod
from rebal.tax.transactions import read_transactions
from rebal.tax.wash_sales import HistoryError, WashGuard
from rebal.tax_overlay.inputs import read_substitutes

__all__ = ["LotMethod", "Optimizer", "check_history", "tax_options"]

#: The defaults as the options show them (defined once, in the requests).
DEFAULT_ST_RATE = format(requests.DEFAULT_ST_RATE, "f")
DEFAULT_LT_RATE = format(requests.DEFAULT_LT_RATE, "f")
DEFAULT_STATE_RATE = format(requests.DEFAULT_STATE_RATE, "f")
DEFAULT_HOLD_DAYS = requests.DEFAULT_HOLD_DAYS
_PANEL = "Tax-aware (with --tax-aware)"


class Optimizer(StrEnum):
    """How a taxable account's trades are planned."""

    rules = "rules"
    highs = "highs"


TaxAwareOpt = Annotated[
    bool,
    typer.Option(
        "--tax-aware",
        help="Plan taxable accounts lot by lot: least tax, gain budget, no wash sales; "
        "report each account's tax and each sell's lots.",
        rich_help_panel=_PANEL,
    ),
]
LotMethodOpt = Annotated[
    LotMethod,
    typer.Option(
        "--lot-method",
        help="Which lots a sell relieves (min-tax and specific: the planner's lots).",
        rich_help_panel=_PANEL,
    ),
]
GainBudgetOpt = Annotated[
    str | None,
    typer.Option(
        "--gain-budget",
        help="Cap on each taxable account's net realised gain in this run (an amount).",
        rich_help_panel=_PANEL,
    ),
]
NoShortTermOpt = Annotated[
    bool,
    typer.Option(
        "--no-short-term-gains",
        help="Sell no lot held one year or less at a gain.",
        rich_help_panel=_PANEL,
    ),
]
TlhOpt = Annotated[
    bool,
    typer.Option(
        "--tlh",
        help="Harvest losses: sell losing lots, buy a substitute (needs --substitutes).",
        rich_help_panel=_PANEL,
    ),
]
SubstitutesOpt = Annotated[
    Path | None,
    typer.Option(
        "--substitutes",
        help="File of substitute groups, one per line: VTI,ITOT,SCHB.",
        rich_help_panel=_PANEL,
    ),
]
HouseholdOpt = Annotated[
    bool,
    typer.Option(
        "--household",
        help="Rebalance each household on one model as one portfolio; sell in IRA/Roth first.",
        rich_help_panel=_PANEL,
    ),
]
OptimizerOpt = Annotated[
    Optimizer,
    typer.Option(
        "--optimizer",
        help="rules (fast) or highs (mixed-integer optimum).",
        rich_help_panel=_PANEL,
    ),
]
StRateOpt = Annotated[
    str,
    typer.Option("--st-rate", help="Short-term gains tax rate, percent.", rich_help_panel=_PANEL),
]
LtRateOpt = Annotated[
    str,
    typer.Option("--lt-rate", help="Long-term gains tax rate, percent.", rich_help_panel=_PANEL),
]
StateRateOpt = Annotated[
    str,
    typer.Option(
        "--state-rate", help="State tax rate added to both, percent.", rich_help_panel=_PANEL
    ),
]
TransactionsOpt = Annotated[
    Path | None,
    typer.Option(
        "--transactions",
        help="Recent trades CSV (as for rebal wash-sales), to avoid wash sales.",
        rich_help_panel=_PANEL,
    ),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Trade date YYYY-MM-DD (default: today in New York).",
        rich_help_panel=_PANEL,
    ),
]
TaxInefficientOpt = Annotated[
    str | None,
    typer.Option(
        "--tax-inefficient",
        help="Symbols best held in IRAs (e.g. BND,BNDX,TIP), for --household.",
        rich_help_panel=_PANEL,
    ),
]
DriftCostOpt = Annotated[
    str | None,
    typer.Option(
        "--drift-cost",
        help="Benefit of closing drift, bps per dollar of drift closed; trades whose tax "
        "exceeds it are shrunk or skipped (default: not weighed).",
        rich_help_panel=_PANEL,
    ),
]
WithdrawalDateOpt = Annotated[
    list[str],
    typer.Option(
        "--withdrawal-date",
        help="ACCOUNT=YYYY-MM-DD: a scheduled withdrawal (repeatable).",
        rich_help_panel=_PANEL,
    ),
]
HoldDaysOpt = Annotated[
    int,
    typer.Option(
        "--hold-before-withdrawal",
        help="Do not rebalance a taxable account this many days before a scheduled withdrawal.",
        rich_help_panel=_PANEL,
    ),
]

_SCHEDULE = re.compile(r"^\s*(?P<account>[^=]+?)\s*=\s*(?P<date>\d{4}-\d{2}-\d{2})\s*$")
Fail = Callable[[str], typer.Exit]


def _date(fail: Fail, option: str, text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise fail(f"{option} {text!r} is not a date (YYYY-MM-DD)") from None


def tax_options(
    fail: Fail,
    *,
    tax_aware: bool,
    lot_method: LotMethod,
    gain_budget: str | None,
    no_short_term_gains: bool,
    tlh: bool,
    substitutes: Path | None,
    household: bool,
    optimizer: Optimizer,
    rates: tuple[str, str, str],
    transactions: Path | None,
    as_of: str | None,
    tax_inefficient: str | None,
    drift_cost: str | None,
    withdrawal_dates: list[str],
    hold_days: int,
) -> TaxOptions:
    """The tax options as given, files read (only with ``--tax-aware``: without it a file given
    is passed as empty, for the request to refuse the option); the request checks them.
    ``fail(message)`` makes the exit for a bad date or file (status 1, nothing written)."""
    day = _date(fail, "--as-of", as_of) if as_of is not None else None
    schedule: dict[str, date] = {}
    for item in withdrawal_dates:
        match = _SCHEDULE.match(item)
        if not match:
            raise fail(f"--withdrawal-date {item!r}: expected ACCOUNT=YYYY-MM-DD")
        schedule[match["account"]] = _date(fail, "--withdrawal-date", match["date"])
    try:
        groups = read_substitutes(substitutes) if substitutes and tax_aware else ()
        history = tuple(read_transactions(transactions)) if transactions and tax_aware else ()
    except InputError as exc:
        raise fail(f"the input has problems; nothing was written:\n{exc}") from None
    return TaxOptions(
        lot_method=lot_method,
        gain_budget=gain_budget or None,
        no_short_term_gains=no_short_term_gains,
        tlh=tlh,
        substitutes=None if substitutes is None else groups,
        household=household,
        optimizer=optimizer.value,
        st_rate=rates[0],
        lt_rate=rates[1],
        state_rate=rates[2],
        transactions=None if transactions is None else history,
        as_of=day,
        tax_inefficient=(tax_inefficient or "").split(","),
        drift_cost=drift_cost,
        withdrawal_dates=schedule,
        hold_before_withdrawal=hold_days,
    )


def check_history(fail: Fail, request: ProposeRequest, name: str, today: date) -> None:
    """Refuse a transactions file (``name``) whose history cannot be replayed on the trade
    date (a sale of more than was held, a lot id used twice)."""
    settings = request.tax_settings(today)
    if settings is None or not settings.transactions:
        return
    try:
        WashGuard.from_history(settings.transactions, settings.as_of)
    except HistoryError as exc:
        raise fail(f"{name} {exc}") from None
