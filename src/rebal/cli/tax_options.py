"""The `--tax-aware` options of `rebal propose`, and their translation into `TaxSettings`.

The options are declared here (Typer `Annotated` types) so the propose command only lists them;
`tax_settings` checks them, reads the substitutes and transactions files, and takes today's date
when `--as-of` is not given (the one place a tax-aware run reads the clock).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from rebal.clock import trade_date_today
from rebal.domain.ids import symbol
from rebal.io.errors import InputError
from rebal.tax.lots import LotMethod
from rebal.tax.rates import TaxRates
from rebal.tax.transactions import read_transactions
from rebal.tax.wash_sales import HistoryError, WashGuard
from rebal.tax_inputs import read_substitutes
from rebal.taxaware import TaxSettings

__all__ = ["LotMethod", "Optimizer", "tax_settings"]

DEFAULT_ST_RATE = "37"
DEFAULT_LT_RATE = "20"
DEFAULT_HOLD_DAYS = 30
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


def _decimal(fail: Fail, option: str, text: str, *, below: Decimal | None = None) -> Decimal:
    try:
        value = Decimal(text.strip().removesuffix("%").replace(",", ""))
    except InvalidOperation:
        raise fail(f"{option} {text!r} is not a number") from None
    if not value.is_finite() or value < 0 or (below is not None and value >= below):
        limit = f" below {below}" if below is not None else ""
        raise fail(f"{option} must be a non-negative number{limit}, received {text}")
    return value


def tax_settings(
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
) -> TaxSettings | None:
    """The settings of a `--tax-aware` run, None without it; `fail(message)` makes the exit
    for a bad option or file (status 1, nothing written)."""
    given = {
        "--lot-method": lot_method is not LotMethod.MIN_TAX,
        "--gain-budget": gain_budget is not None,
        "--no-short-term-gains": no_short_term_gains,
        "--tlh": tlh,
        "--substitutes": substitutes is not None,
        "--household": household,
        "--optimizer": optimizer is not Optimizer.rules,
        "--st-rate": rates[0] != DEFAULT_ST_RATE,
        "--lt-rate": rates[1] != DEFAULT_LT_RATE,
        "--state-rate": rates[2] != "0",
        "--transactions": transactions is not None,
        "--as-of": as_of is not None,
        "--tax-inefficient": tax_inefficient is not None,
        "--drift-cost": drift_cost is not None,
        "--withdrawal-date": bool(withdrawal_dates),
        "--hold-before-withdrawal": hold_days != DEFAULT_HOLD_DAYS,
    }
    if not tax_aware:
        named = [option for option, used in given.items() if used]
        if named:
            raise fail(f"{', '.join(named)} need(s) --tax-aware")
        return None
    if tlh and substitutes is None:
        raise fail("--tlh needs --substitutes (what to buy instead of a harvested security)")
    if hold_days < 0:
        raise fail("--hold-before-withdrawal must not be negative")
    hundred = Decimal(100)
    st, lt, state = (
        _decimal(fail, option, text, below=hundred) / hundred
        for option, text in zip(("--st-rate", "--lt-rate", "--state-rate"), rates, strict=True)
    )
    if st + state >= 1 or lt + state >= 1:
        raise fail("a tax rate plus the state rate must be below 100%")
    day = _date(fail, "--as-of", as_of) if as_of is not None else trade_date_today()
    schedule: dict[str, date] = {}
    for item in withdrawal_dates:
        match = _SCHEDULE.match(item)
        if not match:
            raise fail(f"--withdrawal-date {item!r}: expected ACCOUNT=YYYY-MM-DD")
        schedule[match["account"]] = _date(fail, "--withdrawal-date", match["date"])
    try:
        groups = read_substitutes(substitutes) if substitutes is not None else ()
        history = tuple(read_transactions(transactions)) if transactions is not None else ()
    except InputError as exc:
        raise fail(f"the input has problems; nothing was written:\n{exc}") from None
    if history:
        try:
            WashGuard.from_history(history, day)
        except HistoryError as exc:
            assert transactions is not None
            raise fail(f"{transactions.name} {exc}") from None
    cost = _decimal(fail, "--drift-cost", drift_cost) if drift_cost is not None else None
    return TaxSettings(
        as_of=day,
        rates=TaxRates(st, lt, state),
        lot_method=lot_method,
        gain_budget=_decimal(fail, "--gain-budget", gain_budget) if gain_budget else None,
        short_term_gains=not no_short_term_gains,
        optimizer=optimizer is Optimizer.highs,
        tlh=tlh,
        substitutes=groups,
        transactions=history,
        household=household,
        tax_inefficient=frozenset(
            symbol(s) for s in (tax_inefficient or "").split(",") if s.strip()
        ),
        drift_cost=None if cost is None else cost / Decimal(10000),
        withdrawal_dates=schedule,
        hold_days=hold_days,
    )
