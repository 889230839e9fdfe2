"""The Python API: the four tables in as pandas DataFrames, the results out as DataFrames.

The same validation, engine and reporting as the command line::

    from rebal.api import propose
    result = propose(models, accounts, holdings, prices, policy="rails", band_rel=20)
    result.accounts   # one row per account: status, reason, value, cash, cash_after, policy
    result.positions  # one row per position: weights, drift and band in percent
    result.trades     # the orders, sells before buys
    result.blotter    # orders aggregated by symbol and side

Percentages are given as percent (``band_rel=20`` is 20 %), as on the command line. Money and
quantities come back as ``Decimal``. Invalid tables raise :class:`rebal.errors.InputError`
listing every problem.

Money given as a Python ``float`` (a cash column computed as ``0.1 + 0.2``, a deposit) is taken
as the float's shortest decimal text (``0.30000000000000004``) rounded to the cent, half to even
(``0.30``); money given as ``Decimal``, ``int`` or text must be whole cents, as in a file.
``deposits`` and ``withdrawals`` map account ids to amounts, like ``--deposit``/``--withdraw``.

Each function's options make one typed request of :mod:`rebal.services.requests`, the one the
command line makes from its options: the same checks and defaults, and the same messages (with
the keyword names, ``band_abs``, where the command line says ``--band-abs``); a refused request
raises :class:`rebal.services.requests.RequestError`, a ``ValueError``. ``backtest`` is the lab's
Python entry point with the same units (bands in percent); ``wash_sales`` is ``rebal
wash-sales``.

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

import rebal.versioned_cache  # noqa: F401 - first: numba's cache for this source version
from rebal.adapters.executors.threads import ThreadExecutor
from rebal.backtest.history import PriceHistory
from rebal.backtest.sweep import LabRun, tabulate
from rebal.clock import trade_date_today
from rebal.core.engine import Proposal
from rebal.io.book_arrays import Book
from rebal.io.price_history import load_shipped
from rebal.io.tables import Tables, validate_tables
from rebal.proposal_output import (
    account_values,
    blotter_frame,
    policy_labels,
    positions_frame,
    reasons,
    status_labels,
    trades_frame,
)
from rebal.proposing import drift_tables, propose_tables
from rebal.services import usecases
from rebal.services.requests import (
    DEFAULT_FLOW_FREQUENCY,
    DEFAULT_HOLD_DAYS,
    DEFAULT_INITIAL,
    DEFAULT_LAB_LOTS,
    DEFAULT_LAB_POLICY,
    DEFAULT_LOT_METHOD,
    DEFAULT_LT_RATE,
    DEFAULT_MIN_TRADE,
    DEFAULT_OPTIMIZER,
    DEFAULT_POLICY,
    DEFAULT_ST_RATE,
    DEFAULT_STATE_RATE,
    Bands,
    DriftRequest,
    ProposeRequest,
    TaxOptions,
    WashSalesRequest,
    backtest_request,
    float_cents,
)
from rebal.tax.wash_sales import Transaction, WashSaleResult
from rebal.tax_overlay import TaxAwareProposal


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


def _rounded_money(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``frame`` with the float cells of its money ``columns`` rounded to the cent, as text."""
    out = frame.copy()
    for name in columns:
        if name in out and out[name].dtype.kind == "f":
            out[name] = ["" if v != v else format(float_cents(v), "f") for v in out[name].tolist()]
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
    positions.pop("quantity_micro")  # the whole micro-shares the core trades
    positions.insert(2, "quantity", positions.pop("quantity_exact"))  # to the nano-share
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
    policy: str = DEFAULT_POLICY,
    band_abs: float | None = None,
    band_rel: float | None = None,
    rail_abs: float | None = None,
    rail_rel: float | None = None,
    wide_band_abs: float | None = None,
    wide_band_rel: float | None = None,
    whole_shares: bool = False,
    min_trade: Decimal | float | int | str = DEFAULT_MIN_TRADE,
    cash_reserve: float = 0.0,
    all_accounts: bool = False,
    net: bool = False,
    tax_aware: bool = False,
    lot_method: str = DEFAULT_LOT_METHOD.value,
    gain_budget: Decimal | int | str | None = None,
    no_short_term_gains: bool = False,
    tlh: bool = False,
    substitutes: Sequence[Sequence[str]] = (),
    household: bool = False,
    optimizer: str = DEFAULT_OPTIMIZER,
    st_rate: float | str | Decimal = DEFAULT_ST_RATE,
    lt_rate: float | str | Decimal = DEFAULT_LT_RATE,
    state_rate: float | str | Decimal = DEFAULT_STATE_RATE,
    transactions: Sequence[Transaction] = (),
    as_of: date | None = None,
    tax_inefficient: Sequence[str] = (),
    drift_cost: float | str | None = None,
    withdrawal_dates: Mapping[str, date] | None = None,
    hold_before_withdrawal: int = DEFAULT_HOLD_DAYS,
    deposits: Mapping[str, Decimal | float | int | str] | None = None,
    withdrawals: Mapping[str, Decimal | float | int | str] | None = None,
) -> Result:
    """Validate the tables, measure drift and propose orders, like ``rebal propose``.

    The options make one :class:`rebal.services.requests.ProposeRequest`, checked as the
    command line's are (same rules, same messages with the keyword names): ``band_abs`` with
    ``band_rel``, or a tax option without ``tax_aware``, raises
    :class:`~rebal.services.requests.RequestError` (a ``ValueError``). With ``tax_aware`` the tax
    options apply as on the command line (``drift_cost`` in bps, rates in percent, ``as_of``
    defaulting to today on the exchange (New York); ``transactions`` as read by
    `rebal.io.transactions.read_transactions`). ``deposits`` and ``withdrawals`` map account
    ids to amounts, like ``--deposit``/``--withdraw``; a float amount is rounded to the cent,
    half to even (see the module docstring).
    """
    request = ProposeRequest(
        policy=policy,
        bands=Bands(band_abs, band_rel, rail_abs, rail_rel, wide_band_abs, wide_band_rel),
        whole_shares=whole_shares,
        min_trade=min_trade,
        cash_reserve=cash_reserve,
        all_accounts=all_accounts,
        deposits=dict(deposits or {}),
        withdrawals=dict(withdrawals or {}),
        tax_aware=tax_aware,
        tax=TaxOptions(
            lot_method=lot_method,
            gain_budget=gain_budget,
            no_short_term_gains=no_short_term_gains,
            tlh=tlh,
            substitutes=tuple(tuple(group) for group in substitutes) or None,
            household=household,
            optimizer=optimizer,
            st_rate=st_rate,
            lt_rate=lt_rate,
            state_rate=state_rate,
            transactions=tuple(transactions) or None,
            as_of=as_of,
            tax_inefficient=tuple(tax_inefficient),
            drift_cost=drift_cost,
            withdrawal_dates=dict(withdrawal_dates or {}),
            hold_before_withdrawal=hold_before_withdrawal,
        ),
    )
    tables = _tables(models, accounts, holdings, prices)
    today = trade_date_today() if tax_aware and as_of is None else date.min
    proposed = propose_tables(request, tables, today, ThreadExecutor())
    book, taxed = proposed.book, proposed.tax
    plain = _result(book, proposed.proposal, net)
    if taxed is None:
        return plain
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
    rail_abs: float | None = None,
    rail_rel: float | None = None,
    cash_reserve: float = 0.0,
) -> Result:
    """Validate the tables and measure drift and statuses, like ``rebal drift`` (no orders);
    the options as :func:`propose`'s."""
    request = DriftRequest(
        bands=Bands(band_abs, band_rel, rail_abs, rail_rel), cash_reserve=cash_reserve
    )
    drifted = drift_tables(request, _tables(models, accounts, holdings, prices), ThreadExecutor())
    return _result(drifted.book, drifted.proposal, False)


def backtest(
    history: PriceHistory | None = None,
    *,
    weights: Mapping[str, float] | None = None,
    policy: str = DEFAULT_LAB_POLICY,
    band_abs: float | None = None,
    band_rel: float | None = None,
    rail_abs: float | None = None,
    rail_rel: float | None = None,
    wide_band_abs: float | None = None,
    wide_band_rel: float | None = None,
    frequency: str | None = None,
    day: int = 1,
    look: int | None = None,
    cooldown: int = 0,
    start: date | None = None,
    end: date | None = None,
    initial: float = DEFAULT_INITIAL,
    flow: float = 0.0,
    flow_frequency: str = DEFAULT_FLOW_FREQUENCY,
    cost_bps: float = 0.0,
    cost_fixed: float = 0.0,
    tax_rate: float | None = None,
    short_term_rate: float | None = None,
    state_rate: float | None = None,
    lots: str = DEFAULT_LAB_LOTS.value,
) -> LabRun:
    """Backtest one lab policy on ``history``, like ``rebal backtest``: the lab's Python entry
    point with the command line's units (band widths and rates in **percent**, as in
    :func:`propose`; ``band_rel=20`` is a 20 % relative band).

    ``history`` defaults to the shipped monthly Shiller series with ``weights``
    ``{"stocks": 60, "bonds": 40}`` (``rebal.services.requests.SHIPPED_WEIGHTS``); a history of
    one's own (:func:`rebal.io.price_history.load_prices`) defaults to equal weights.
    ``start``/``end`` bound the observations (default: from the first date every symbol has a
    price). Returns the run with its metrics table (``.table``, one row per variant).
    """
    request = backtest_request(locals(), shipped=history is None)
    history = load_shipped() if history is None else history
    return tabulate(usecases.backtest(request, history, executor=ThreadExecutor()))


def wash_sales(
    transactions: Sequence[Transaction], identical: Sequence[Sequence[str] | str] = ()
) -> WashSaleResult:
    """The wash sales of a transaction history, like ``rebal wash-sales``: ``transactions`` as
    read by `rebal.io.transactions.read_transactions`, ``identical`` groups of substantially
    identical symbols."""
    return usecases.wash_sales(WashSalesRequest(tuple(transactions), tuple(identical)))
