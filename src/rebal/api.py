"""The Python API: the four tables in as pandas DataFrames, the results out as DataFrames.

The same validation, engine and reporting as the command line::

    from rebal.api import propose
    result = propose(models, accounts, holdings, prices, policy="rails", band_rel=20)
    result.accounts   # one row per account: status, reason, value, cash, cash_after, policy
    result.positions  # one row per position: weights, drift and band in percent
    result.trades     # the orders, sells before buys
    result.blotter    # orders aggregated by symbol and side

Percentages are given as percent (``band_rel=20`` is 20 %), as on the command line. Money and
quantities come back as ``Decimal``. Invalid tables raise :class:`rebal.io.errors.InputError`
listing every problem.

Money given as a Python ``float`` (a cash column computed as ``0.1 + 0.2``, a deposit) is taken
as the float's shortest decimal text (``0.30000000000000004``) rounded to the cent, half to even
(``0.30``); money given as ``Decimal``, ``int`` or text must be whole cents, as in a file.
``deposits`` and ``withdrawals`` map account ids to amounts, like ``--deposit``/``--withdraw``.

``tax_aware=True`` runs the tax layer like ``rebal propose --tax-aware`` (same options as keyword
arguments, rates in percent); ``result.tax`` then has one row per account (realised short- and
long-term gains, estimated tax, wash-sale flags, the planner used and the note) and
``result.tax_aware`` the full annotation (the JSON ``tax`` objects and each sell's lots).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pandas as pd

from rebal.adapters.executors.threads import ThreadExecutor
from rebal.book import Book, build_book
from rebal.clock import trade_date_today
from rebal.core.bands import BandSpec
from rebal.core.engine import Proposal, RunConfig
from rebal.core.engine import propose as run_engine
from rebal.core.trades import TradeRules
from rebal.domain.money import cents, check_cents, to_cents
from rebal.io.tables import Tables, validate_tables
from rebal.report import (
    account_values,
    blotter_frame,
    policy_labels,
    positions_frame,
    reasons,
    status_labels,
    trades_frame,
)
from rebal.tax.lots import LotMethod
from rebal.tax.rates import TaxRates
from rebal.tax.wash_sales import Transaction
from rebal.taxaware import TaxAwareProposal, TaxSettings, run_tax_aware


@dataclass(frozen=True)
class Result:
    """A run's results as DataFrames, plus the book and the raw proposal for further work."""

    accounts: pd.DataFrame
    positions: pd.DataFrame
    trades: pd.DataFrame
    blotter: pd.DataFrame
    book: Book
    proposal: Proposal
    tax: pd.DataFrame | None = None
    tax_aware: TaxAwareProposal | None = None


def _fraction(percent: float | None) -> float | None:
    return None if percent is None else percent / 100.0


def _money_cents(amount: Decimal | float | int | str, what: str) -> int:
    """``amount`` in integer cents: a float rounded to the cent (see the module's rule)."""
    if isinstance(amount, float):
        return to_cents(cents(Decimal(repr(amount))))
    exact = Decimal(str(amount))
    check_cents(exact, what)
    return to_cents(exact)


def _flows(
    deposits: Mapping[str, Decimal | float | int | str] | None,
    withdrawals: Mapping[str, Decimal | float | int | str] | None,
) -> dict[str, int]:
    """Deposits (+) and withdrawals (-) per account, in cents."""
    flows: dict[str, int] = {}
    for given, sign, what in ((deposits, 1, "deposit"), (withdrawals, -1, "withdrawal")):
        for account, amount in (given or {}).items():
            value = _money_cents(amount, f"{what} for {account}")
            if value <= 0:
                raise ValueError(f"{what} for {account} must be positive, received {amount}")
            flows[account] = flows.get(account, 0) + sign * value
    return flows


def _rounded_money(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``frame`` with the float cells of its money ``columns`` rounded to the cent, as text."""
    out = frame.copy()
    for name in columns:
        if name in out and out[name].dtype.kind == "f":
            out[name] = [
                "" if v != v else format(cents(Decimal(repr(v))), "f") for v in out[name].tolist()
            ]
    return out


def _decimals(series: pd.Series, places: int) -> pd.Series:
    return series.map(lambda n: Decimal(int(n)).scaleb(-places))


def _result(book: Book, proposal: Proposal, net: bool) -> Result:
    arrays = book.arrays
    accounts = pd.DataFrame(
        {
            "account": book.accounts["account"].to_numpy(),
            "model": book.accounts["model"].to_numpy(),
            "status": status_labels(proposal),
            "reason": reasons(book, proposal),
            "value": pd.Series(account_values(book, proposal), dtype=object),
            "cash": _decimals(pd.Series(arrays.cash_cents), 2),
            "pending_cash": _decimals(pd.Series(arrays.pending_cents), 2),
            "cash_after": _decimals(pd.Series(proposal.trades.cash_after_cents), 2),
            "policy": policy_labels(proposal),
            "orders": proposal.trades.count,
        }
    )
    positions = positions_frame(book, proposal).drop(columns="row")
    positions.insert(2, "quantity", _decimals(positions.pop("quantity_micro"), 6))
    trades = trades_frame(book, proposal)
    blotter = blotter_frame(trades, net)
    for frame in (trades, blotter):
        frame["quantity"] = _decimals(frame.pop("quantity_micro"), 6)
        frame["amount"] = _decimals(frame.pop("amount_cents"), 2)
    return Result(accounts, positions, trades.drop(columns="row"), blotter, book, proposal)


def _tables(
    models: pd.DataFrame, accounts: pd.DataFrame, holdings: pd.DataFrame, prices: pd.DataFrame
) -> Tables:
    return validate_tables(
        models,
        _rounded_money(accounts, ("cash", "pending_cash")),
        _rounded_money(holdings, ("cost_basis",)),
        prices,
    )


def propose(
    models: pd.DataFrame,
    accounts: pd.DataFrame,
    holdings: pd.DataFrame,
    prices: pd.DataFrame,
    *,
    policy: str = "rails",
    band_abs: float | None = None,
    band_rel: float | None = None,
    rail_abs: float | None = None,
    rail_rel: float | None = None,
    wide_band_abs: float | None = None,
    wide_band_rel: float | None = None,
    whole_shares: bool = False,
    min_trade: Decimal | int | str = 1,
    cash_reserve: float = 0.0,
    all_accounts: bool = False,
    net: bool = False,
    tax_aware: bool = False,
    lot_method: str = "min-tax",
    gain_budget: Decimal | int | str | None = None,
    no_short_term_gains: bool = False,
    tlh: bool = False,
    substitutes: Sequence[Sequence[str]] = (),
    household: bool = False,
    optimizer: str = "rules",
    st_rate: float | str = 37,
    lt_rate: float | str = 20,
    state_rate: float | str = 0,
    transactions: Sequence[Transaction] = (),
    as_of: date | None = None,
    tax_inefficient: Sequence[str] = (),
    drift_cost: float | str | None = None,
    withdrawal_dates: Mapping[str, date] | None = None,
    hold_before_withdrawal: int = 30,
    deposits: Mapping[str, Decimal | float | int | str] | None = None,
    withdrawals: Mapping[str, Decimal | float | int | str] | None = None,
) -> Result:
    """Validate the tables, measure drift and propose orders, like ``rebal propose``.

    With ``tax_aware`` the tax options apply as on the command line (``drift_cost`` in bps,
    rates in percent, ``as_of`` defaulting to today on the exchange (New York);
    ``transactions`` as read by `rebal.tax.transactions.read_transactions`).
    """
    if band_abs is None and band_rel is None:
        band_rel = 20.0
    config = RunConfig(
        policy=policy,
        bands=BandSpec(
            band_abs=_fraction(band_abs),
            band_rel=_fraction(band_rel),
            rail_abs=_fraction(rail_abs),
            rail_rel=_fraction(rail_rel),
            wide_abs=_fraction(wide_band_abs),
            wide_rel=_fraction(wide_band_rel),
        ),
        rules=TradeRules(
            whole_shares=whole_shares, min_trade_cents=int(Decimal(str(min_trade)) * 100)
        ),
        cash_reserve=cash_reserve / 100.0,
        all_accounts=all_accounts,
    )
    tables = _tables(models, accounts, holdings, prices)
    flows = _flows(deposits, withdrawals)
    if not tax_aware:
        book = build_book(tables, flows)
        return _result(book, run_engine(book.arrays, config, executor=ThreadExecutor()), net)
    if optimizer not in ("rules", "highs"):
        raise ValueError(f"optimizer must be 'rules' or 'highs', received {optimizer!r}")
    hundred = Decimal(100)
    settings = TaxSettings(
        as_of=as_of or trade_date_today(),
        rates=TaxRates(
            Decimal(str(st_rate)) / hundred,
            Decimal(str(lt_rate)) / hundred,
            Decimal(str(state_rate)) / hundred,
        ),
        lot_method=LotMethod(lot_method),
        gain_budget=None if gain_budget is None else Decimal(str(gain_budget)),
        short_term_gains=not no_short_term_gains,
        optimizer=optimizer == "highs",
        tlh=tlh,
        substitutes=tuple(tuple(group) for group in substitutes),
        transactions=tuple(transactions),
        household=household,
        tax_inefficient=frozenset(tax_inefficient),
        drift_cost=None if drift_cost is None else Decimal(str(drift_cost)) / 10000,
        withdrawal_dates=dict(withdrawal_dates or {}),
        hold_days=hold_before_withdrawal,
    )
    book, taxed = run_tax_aware(tables, config, settings, flows, executor=ThreadExecutor())
    plain = _result(book, taxed.proposal, net)
    rows = [taxed.annotation(i) for i in range(book.arrays.n_accounts)]
    tax = pd.DataFrame(
        {
            "account": book.accounts["account"].to_numpy(),
            **{
                key: [Decimal(str(a.tax[key])) for a in rows]
                for key in ("realized_st", "realized_lt", "estimated_tax")
            },
            "wash_sale_flags": [a.tax["wash_sale_flags"] for a in rows],
            "method": [a.tax["method"] for a in rows],
            "note": [a.note for a in rows],
        }
    )
    return Result(
        plain.accounts,
        plain.positions,
        plain.trades,
        plain.blotter,
        book,
        taxed.proposal,
        tax,
        taxed,
    )


def drift(
    models: pd.DataFrame,
    accounts: pd.DataFrame,
    holdings: pd.DataFrame,
    prices: pd.DataFrame,
    *,
    band_abs: float | None = None,
    band_rel: float | None = None,
) -> Result:
    """Validate the tables and measure drift and statuses, like ``rebal drift`` (no orders)."""
    if band_abs is None and band_rel is None:
        band_rel = 20.0
    bands = BandSpec(band_abs=_fraction(band_abs), band_rel=_fraction(band_rel))
    book = build_book(_tables(models, accounts, holdings, prices))
    return _result(
        book,
        run_engine(book.arrays, RunConfig(bands=bands, trade=False), executor=ThreadExecutor()),
        False,
    )
