"""A whole rebalancing run over a book, as one pass of array operations.

1. Value every slot and place the band, rail and wide-band edges (:mod:`rebal.core.bands`).
2. Measure drift (:mod:`rebal.core.drift`) and give each account its status
   (:mod:`rebal.core.status`).
3. Choose, per account, what to do: accounts to liquidate are liquidated; an account whose
   status calls for action (or every account, with ``all_accounts``) follows the run's policy
   when that policy wants to trade; an account with a cash flow or a cash shortfall that the
   policy leaves alone invests or raises it with the cash-flow policy.
4. Each policy computes desired values for its accounts (:mod:`rebal.core.policies`).
5. Desired values become exact orders (:mod:`rebal.core.trades`).

Accounts that cannot be checked, have no model or cannot trade get no orders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields

import numpy as np

from rebal.core.bands import (
    BandParams,
    BandSpec,
    band_edges,
    resolve_band_params,
    run_band_params,
)
from rebal.core.book import BookArrays
from rebal.core.drift import Drift, measure_drift
from rebal.core.policies import CASH_FLOW, LIQUIDATION, POLICIES, PolicyInput, policy_by_name
from rebal.core.rows import concat_rows, take_rows
from rebal.core.status import ACTIONABLE, Status, Statuses, classify
from rebal.core.trades import MICRO, TradeRules, Trades, generate_trades
from rebal.core.types import BoolArray, FloatArray, IntArray

POLICY_NAMES: tuple[str, ...] = tuple(POLICIES)
# Accounts per chunk: (chunk, K) float64 working arrays of well under a megabyte stay in cache.
CHUNK_ACCOUNTS = 8192
NO_POLICY = -1


@dataclass(frozen=True, slots=True, kw_only=True)
class RunConfig:
    """Settings of one run: the policy, the bands and how orders are made."""

    policy: str = "rails"
    bands: BandSpec = field(default_factory=BandSpec)
    rules: TradeRules = field(default_factory=TradeRules)
    cash_reserve: float = 0.0  # fraction of account value kept in cash
    all_accounts: bool = False
    trade: bool = True  # False: measure drift and statuses only, propose no orders

    def __post_init__(self) -> None:
        policy_by_name(self.policy)
        if not 0.0 <= self.cash_reserve < 1.0:
            raise ValueError(f"cash reserve must be in [0, 100) %, received {self.cash_reserve}")


@dataclass(frozen=True, slots=True)
class Proposal:
    """The outcome of a run: drift, statuses, which policy each account followed, orders."""

    drift: Drift
    statuses: Statuses
    policy: IntArray  # (N,) index into POLICY_NAMES, NO_POLICY where nothing was proposed
    trades: Trades
    weight_after: FloatArray  # (N, K) estimated weights after the orders

    @property
    def traded(self) -> BoolArray:
        """Accounts with at least one order."""
        result: BoolArray = self.trades.count > 0
        return result


def measure_book(book: BookArrays, bands: BandSpec) -> Drift:
    """Return the drift of every account of ``book`` under the run's ``bands``."""
    shape = book.symbol.shape
    run = run_band_params(bands)

    def params(overrides: BandParams | None, shape: tuple[int, int]) -> BandParams:
        return run if overrides is None else resolve_band_params(bands, shape, overrides)

    edges = band_edges(book.target, params(book.overrides, shape))
    cash_edges = band_edges(book.cash_target[:, None], params(book.cash_overrides, (shape[0], 1)))
    low = np.where(book.has_cash_target, cash_edges.band_low[:, 0], 0.0)
    high = np.where(book.has_cash_target, cash_edges.band_high[:, 0], 1.0)
    return measure_drift(
        book.value,
        book.cash_cents / 100.0,
        book.target,
        edges,
        book.used,
        cash_target=book.cash_target,
        cash_edges=(low, high),
    )


def classify_book(book: BookArrays, drift: Drift) -> Statuses:
    """Return the status of every account of ``book``."""
    return classify(
        drift,
        has_model=book.has_model,
        can_trade=book.can_trade,
        liquidate=book.liquidate,
        flow=book.pending_cents / 100.0,
        restricted=book.restricted,
        used=book.used,
    )


def _choose_policies(
    book: BookArrays, drift: Drift, statuses: Statuses, config: RunConfig, spendable: FloatArray
) -> IntArray:
    status = statuses.status
    checkable = (status > int(Status.UNABLE_TO_CHECK)) & book.can_trade & drift.priced
    selected = np.isin(status, [int(s) for s in ACTIONABLE]) | config.all_accounts
    run_policy = policy_by_name(config.policy)
    follows_run = run_policy.wants_trade(drift) & (drift.any_breach | config.all_accounts)
    cash_event = (book.pending_cents != 0) | (spendable < 0)
    choice = np.full(book.n_accounts, NO_POLICY, dtype=np.int64)
    choice = np.where(cash_event, POLICY_NAMES.index(CASH_FLOW.name), choice)
    choice = np.where(follows_run, POLICY_NAMES.index(run_policy.name), choice)
    choice = np.where(book.liquidate, POLICY_NAMES.index(LIQUIDATION.name), choice)
    result: IntArray = np.where(checkable & selected & config.trade, choice, NO_POLICY)
    return result


def kept_cents(book: BookArrays, drift: Drift, cash_reserve: float) -> IntArray:
    """Cash each account keeps aside: the larger of its model's cash weight and the reserve."""
    post_total = np.nan_to_num(drift.total) + book.pending_cents / 100.0
    keep = np.maximum(book.cash_target, cash_reserve) * np.maximum(post_total, 0.0)
    result: IntArray = np.rint(keep * 100.0).astype(np.int64)
    return result


def propose(
    book: BookArrays,
    config: RunConfig,
    on_progress: Callable[[int, int], None] | None = None,
) -> Proposal:
    """Measure, classify and propose orders for every account of ``book``.

    The book is processed in chunks of :data:`CHUNK_ACCOUNTS` accounts, so the working arrays
    stay in the processor's cache; ``on_progress(done, total)`` is called after each chunk.
    """
    n = book.n_accounts
    parts = []
    for start in range(0, max(n, 1), CHUNK_ACCOUNTS):
        rows = slice(start, min(start + CHUNK_ACCOUNTS, n))
        parts.append(_propose_chunk(take_rows(book, rows), config))
        if on_progress is not None:
            on_progress(rows.stop, n)
    return parts[0] if len(parts) == 1 else concat_rows(parts)


def _propose_chunk(book: BookArrays, config: RunConfig) -> Proposal:
    drift = measure_book(book, config.bands)
    statuses = classify_book(book, drift)
    keep_cents = kept_cents(book, drift, config.cash_reserve)
    spendable = (book.cash_cents + book.pending_cents - keep_cents) / 100.0
    choice = _choose_policies(book, drift, statuses, config, spendable)

    desired = np.nan_to_num(drift.value)
    frozen = book.restricted | ~book.used
    for index, name in enumerate(POLICY_NAMES):
        rows = np.flatnonzero(choice == index)
        if rows.size == 0:
            continue
        policy = POLICIES[name]
        if rows.size == book.n_accounts:  # one policy for the whole book: no copies
            inp = PolicyInput(drift=drift, frozen=frozen, spendable=spendable)
            desired = policy.desired_values(inp)
            continue
        sub = take_rows(drift, rows)
        inp = PolicyInput(drift=sub, frozen=frozen[rows], spendable=spendable[rows])
        desired[rows] = policy.desired_values(inp)

    trades = _orders(book, choice, desired, keep_cents, config.rules)
    return Proposal(
        drift=drift,
        statuses=statuses,
        policy=choice,
        trades=trades,
        weight_after=weights_after(book, drift, trades),
    )


def _orders(
    book: BookArrays, choice: IntArray, desired: FloatArray, keep_cents: IntArray, rules: TradeRules
) -> Trades:
    """Orders of the accounts a policy ran on; the others keep their cash and get none."""
    n, k = book.symbol.shape
    none = np.zeros((n, k), dtype=np.int64)
    trades = Trades(
        sell_micro=none,
        sell_cents=none.copy(),
        buy_cents=none.copy(),
        buy_micro=none.copy(),
        cash_after_cents=book.cash_cents.copy(),
        dropped=np.zeros(n, dtype=np.int64),
    )
    rows = np.flatnonzero(choice >= 0)
    if rows.size == 0:
        return trades
    acted = generate_trades(
        book.quantity_micro[rows],
        book.price[rows],
        desired[rows],
        book.cash_cents[rows],
        book.pending_cents[rows],
        keep_cents[rows],
        book.used[rows] & ~book.restricted[rows],
        rules,
    )
    for f in fields(Trades):
        getattr(trades, f.name)[rows] = getattr(acted, f.name)
    return trades


def weights_after(book: BookArrays, drift: Drift, trades: Trades) -> FloatArray:
    """Estimated weights after ``trades``, at the quoted prices (NaN where a price is missing)."""
    quantity = book.quantity_micro - trades.sell_micro + trades.buy_micro
    value = np.where(book.used, quantity / MICRO * np.nan_to_num(book.price), 0.0)
    total = value.sum(axis=1) + trades.cash_after_cents / 100.0
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = np.where(total[:, None] > 0, value / total[:, None], np.nan)
    result: FloatArray = np.where(drift.priced[:, None], weight, np.nan)
    return result
