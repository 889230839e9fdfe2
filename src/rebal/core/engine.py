"""A whole rebalancing run over a book, in one compiled pass over its accounts.

1. Value every slot and place the band, rail and wide-band edges (:mod:`rebal.core.bands`).
2. Measure drift (:mod:`rebal.core.drift`) and give each account its status
   (:mod:`rebal.core.status`).
3. Choose, per account, what to do: accounts to liquidate are liquidated; an account whose
   status calls for action (or every account, with ``all_accounts``) follows the run's policy
   when that policy wants to trade; an account with a cash flow or a cash shortfall that the
   policy leaves alone invests or raises it with the cash-flow policy.
4. The chosen policy computes the account's desired values (:mod:`rebal.core.kernels`).
5. Desired values become exact orders (:mod:`rebal.core.trades`).
6. Where a policy that trades to the bands leaves a position it may trade outside its band,
   the account says why (:class:`rebal.core.status.Unresolved`).

Targets, bands and the kept cash are those of :mod:`rebal.core.reserve`: with a cash reserve
above the model's cash weight, drift, statuses and orders all measure against the same
reserve-adjusted targets.

Accounts that cannot be checked, have no model or cannot trade get no orders.

The steps are the compiled kernels of those modules (the ones their public functions run),
applied block by block of :data:`BLOCK_ACCOUNTS` accounts inside one compiled loop, so that a
block's arrays are still in the processor's cache from one step to the next and every result
array is written once, in place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np

from rebal.core.bands import (
    BandParams,
    BandSpec,
    Edges,
    as_2d,
    at,
    edge_rows,
    resolve_band_params,
    run_band_params,
    widths,
)
from rebal.core.book import BookArrays, value_rows
from rebal.core.drift import Drift, drift_rows
from rebal.core.kernels import (
    WORK_ROWS,
    aims_at_bands,
    destination_into,
    inline_kernel,
    kernel,
    maximum,
    nan_to_num,
    outside,
    row_sum,
    wants,
)
from rebal.core.policies import CASH_FLOW, LIQUIDATION, POLICIES, policy_by_name
from rebal.core.reserve import cash_band, kept_weight, target_rows
from rebal.core.reserve import kept_cents as account_kept_cents
from rebal.core.status import ACTIONABLE, Status, Statuses, Unresolved, status_rows
from rebal.core.step_arrays import StepInputs, StepOutputs, StepScratch, StepSettings
from rebal.core.trades import MICRO, TradeRules, Trades, account_orders, no_orders
from rebal.core.types import BoolArray, FloatArray, IntArray, dense_as

POLICY_NAMES: tuple[str, ...] = tuple(POLICIES)
NO_POLICY = -1
# Accounts per call of the compiled loop: the progress callback reports each such chunk.
CHUNK_ACCOUNTS = 65536
# Accounts per block: a block's (block, K) arrays, some twenty of them, stay in cache.
BLOCK_ACCOUNTS = 128

# What the compiled loop needs to know of the policies and statuses, as arrays and integers.
_POLICY_CODES = np.array([POLICIES[name].code for name in POLICY_NAMES], dtype=np.int64)
_CASH_FLOW = POLICY_NAMES.index(CASH_FLOW.name)
_LIQUIDATION = POLICY_NAMES.index(LIQUIDATION.name)
_ACTIONABLE = np.isin(np.arange(len(Status)), [int(s) for s in ACTIONABLE])
_UNABLE_TO_CHECK = int(Status.UNABLE_TO_CHECK)


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


#: A position within this much money (plus a micro-share of it) of its band edge after the
#: orders counts as inside: orders are rounded to micro-shares and cents.
ROUNDING_SLACK = 0.02


@dataclass(frozen=True, slots=True)
class Proposal:
    """The outcome of a run: drift, statuses, which policy each account followed, orders."""

    drift: Drift
    statuses: Statuses
    policy: IntArray  # (N,) index into POLICY_NAMES, NO_POLICY where nothing was proposed
    trades: Trades
    weight_after: FloatArray  # (N, K) estimated weights after the orders
    unresolved: IntArray  # (N,) Unresolved: why a tradable position ends outside its band
    unresolved_subject: IntArray  # (N,) the slot furthest outside its band after (-1: none)

    @property
    def traded(self) -> BoolArray:
        """Accounts with at least one order."""
        result: BoolArray = self.trades.count > 0
        return result


def _band_params(
    bands: BandSpec, overrides: BandParams | None, shape: tuple[int, int]
) -> BandParams:
    """The run's widths, per slot where the book overrides them."""
    if overrides is None:
        return run_band_params(bands)
    return resolve_band_params(bands, shape, overrides)


@kernel
def _kept_rows(
    total: FloatArray, pending_cents: IntArray, cash_target: FloatArray, cash_reserve: float
) -> Any:
    out = np.empty(total.shape[0], dtype=np.int64)
    for i in range(total.shape[0]):
        out[i] = account_kept_cents(total[i], pending_cents[i], cash_target[i], cash_reserve)
    return out


def kept_cents(book: BookArrays, drift: Drift, cash_reserve: float) -> IntArray:
    """Cash each account keeps aside: the larger of its model's cash weight and the reserve."""
    n = book.n_accounts
    result: IntArray = _kept_rows(
        dense_as(drift.total, np.float64, (n,)),
        dense_as(book.pending_cents, np.int64, (n,)),
        dense_as(book.cash_target, np.float64, (n,)),
        float(cash_reserve),
    )
    return result


@inline_kernel
def _policy_of(
    status: int,
    checkable: bool,
    breach: tuple[bool, bool],
    cash_event: bool,
    liquidate: bool,
    run: int,
    all_accounts: bool,
) -> int:
    """Which policy an account follows (index into POLICY_NAMES), NO_POLICY for none.

    ``checkable``: the account can be checked and trade, and the run trades; ``breach``:
    whether the account has a band breach and a checked slot; ``cash_event``: a pending flow or
    a cash shortfall; ``run``: the run's policy.
    """
    any_breach, any_checked = breach
    if not (checkable and (_ACTIONABLE[status] or all_accounts)):
        return NO_POLICY
    if liquidate:
        return _LIQUIDATION
    if wants(_POLICY_CODES[run], any_breach, any_checked) and (any_breach or all_accounts):
        return run
    if cash_event:
        return _CASH_FLOW
    return NO_POLICY


@inline_kernel
def _any(mask: BoolArray, i: int) -> bool:
    for j in range(mask.shape[1]):  # noqa: SIM110 (numba compiles no generator)
        if mask[i, j]:
            return True
    return False


@kernel
def _weight_rows(
    start: int,
    stop: int,
    quantity_micro: IntArray,
    price: FloatArray,
    used: BoolArray,
    priced: BoolArray,
    trades: tuple[IntArray, IntArray, IntArray],
    out: FloatArray,
) -> None:
    """Weights after the orders (``trades``: sold and bought micro-shares, cash after) of
    accounts ``start:stop``."""
    sell_micro, buy_micro, cash_after = trades
    value = np.empty(price.shape[1])
    for i in range(start, stop):
        for j in range(value.shape[0]):
            quantity = quantity_micro[i, j] - sell_micro[i, j] + buy_micro[i, j]
            value[j] = quantity / MICRO * nan_to_num(price[i, j]) if used[i, j] else 0.0
        total = row_sum(value) + cash_after[i] / 100.0
        for j in range(value.shape[0]):
            out[i, j] = value[j] / total if priced[i] and total > 0 else np.nan


def weights_after(book: BookArrays, drift: Drift, trades: Trades) -> FloatArray:
    """Estimated weights after ``trades``, at the quoted prices (NaN where a price is missing)."""
    shape = book.symbol.shape
    out: FloatArray = np.empty(shape)
    _weight_rows(
        0,
        shape[0],
        *book.holdings(),
        dense_as(drift.priced, np.bool_, shape[:1]),
        (
            dense_as(trades.sell_micro, np.int64, shape),
            dense_as(trades.buy_micro, np.int64, shape),
            dense_as(trades.cash_after_cents, np.int64, shape[:1]),
        ),
        out,
    )
    return out


_T = TypeVar("_T")
_R = TypeVar("_R")


class ChunkExecutor(Protocol):
    """Where the chunks of a run are computed: any object with an order-keeping ``map`` (the
    shape of :class:`rebal.ports.executor.Executor`, which the core may not import)."""

    def map(self, fn: Callable[[_T], _R], items: Iterable[_T]) -> Iterator[_R]:
        """``fn`` of every item, results in the items' order."""
        ...


def propose(
    book: BookArrays,
    config: RunConfig,
    on_progress: Callable[[int, int], None] | None = None,
    executor: ChunkExecutor | None = None,
) -> Proposal:
    """Measure, classify and propose orders for every account of ``book``.

    One compiled loop does every step for a block of accounts before the next block (see the
    module docstring); it runs in chunks of :data:`CHUNK_ACCOUNTS` accounts, through
    ``executor`` (the caller's choice: threads, since chunks write disjoint rows and the loop
    releases the GIL; one after the other when none is given), and ``on_progress(done,
    total)`` is called after each chunk.
    """
    n = book.n_accounts
    shape = book.symbol.shape
    model_target = dense_as(book.target, np.float64, shape)
    reserve = float(config.cash_reserve)
    outputs = step_outputs(n, shape[1], reserve > 0)
    # Targets measured against: the model's, or reserve-adjusted ones written by the loop.
    result = _proposal(outputs, outputs.adjusted_target if reserve > 0 else model_target)
    cash_bands = _band_params(config.bands, book.cash_overrides, (n, 1))
    inputs = StepInputs(
        quantity_micro=dense_as(book.quantity_micro, np.int64, shape),
        price=dense_as(book.price, np.float64, shape),
        model_target=model_target,
        used=book.used,
        restricted=dense_as(book.restricted, np.bool_, shape),
        cash_cents=dense_as(book.cash_cents, np.int64, (n,)),
        pending_cents=dense_as(book.pending_cents, np.int64, (n,)),
        cash_target=dense_as(book.cash_target, np.float64, (n,)),
        has_cash_target=dense_as(book.has_cash_target, np.bool_, (n,)),
        has_model=dense_as(book.has_model, np.bool_, (n,)),
        can_trade=dense_as(book.can_trade, np.bool_, (n,)),
        liquidate=dense_as(book.liquidate, np.bool_, (n,)),
        band_widths=widths(_band_params(config.bands, book.overrides, shape)),
        cash_band_abs=as_2d(cash_bands.band_abs),
        cash_band_rel=as_2d(cash_bands.band_rel),
    )
    settings = StepSettings(
        policy=POLICY_NAMES.index(policy_by_name(config.policy).name),
        all_accounts=bool(config.all_accounts),
        trade=bool(config.trade),
        cash_reserve=reserve,
        rules=config.rules.as_kernel_args(),
    )

    def run(chunk: tuple[int, int]) -> int:
        step_rows(*chunk, inputs, settings, outputs, step_scratch(shape[1]))
        return chunk[1] - chunk[0]

    chunks = [
        (start, min(start + CHUNK_ACCOUNTS, n)) for start in range(0, max(n, 1), CHUNK_ACCOUNTS)
    ]
    done = 0
    counts = map(run, chunks) if executor is None or len(chunks) < 2 else executor.map(run, chunks)
    for count in counts:
        done += count
        if on_progress is not None:
            on_progress(done, n)
    return result


@kernel
def step_outputs(n: int, k: int, adjusted: bool) -> Any:
    """Uninitialised :class:`StepOutputs` for ``n`` accounts of ``k`` slots (``adjusted``: room
    for reserve-adjusted targets)."""

    def slots() -> Any:
        return np.empty((n, k))

    def accounts() -> Any:
        return np.empty(n)

    def flags(shape: Any) -> Any:
        return np.empty(shape, dtype=np.bool_)

    def counts(shape: Any) -> Any:
        return np.empty(shape, dtype=np.int64)

    adjusted_target = slots() if adjusted else np.empty((1, 1))
    return StepOutputs(
        slots(),
        slots(),
        slots(),
        slots(),
        slots(),
        slots(),
        slots(),
        slots(),
        slots(),
        slots(),
        flags((n, k)),
        flags((n, k)),
        flags((n, k)),
        accounts(),
        accounts(),
        accounts(),
        accounts(),
        accounts(),
        accounts(),
        flags(n),
        flags(n),
        flags(n),
        flags(n),
        counts(n),
        counts(n),
        counts(n),
        counts(n),
        counts((n, k)),
        counts((n, k)),
        counts((n, k)),
        counts((n, k)),
        counts(n),
        counts(n),
        slots(),
        adjusted_target,
        accounts(),
        counts(n),
        counts(n),
    )


@kernel
def step_scratch(k: int) -> Any:
    """:class:`StepScratch` for accounts of ``k`` slots: allocated once per caller, so that a
    caller stepping one account at a time (the lab) allocates nothing."""
    return StepScratch(
        np.empty(k, dtype=np.bool_),
        np.empty(k),
        np.empty(k),
        np.empty(k),
        np.empty((WORK_ROWS, k)),
        np.empty((BLOCK_ACCOUNTS, k), dtype=np.bool_),
        np.empty(BLOCK_ACCOUNTS, dtype=np.bool_),
    )


def _proposal(outputs: StepOutputs, target: FloatArray) -> Proposal:
    """The proposal whose arrays are ``outputs``, its drift measured against ``target``."""
    o = outputs
    drift = Drift(
        value=o.value,
        cash=o.cash,
        total=o.total,
        weight=o.weight,
        target=target,
        drift=o.drift,
        relative=o.relative,
        edges=Edges(o.band_low, o.band_high, o.rail_low, o.rail_high, o.wide_low, o.wide_high),
        checked=o.checked,
        breach=o.breach,
        wide_breach=o.wide_breach,
        cash_weight=o.cash_weight,
        cash_target=o.kept_share,
        cash_breach=o.cash_breach,
        priced=o.priced,
        cash_low=o.cash_low,
        cash_high=o.cash_high,
        cash_short=o.cash_short,
    )
    return Proposal(
        drift=drift,
        statuses=Statuses(o.status, o.reason, o.subject),
        policy=o.policy,
        trades=Trades(
            o.sell_micro, o.sell_cents, o.buy_cents, o.buy_micro, o.cash_after_cents, o.dropped
        ),
        weight_after=o.weight_after,
        unresolved=o.unresolved,
        unresolved_subject=o.unresolved_subject,
    )


@inline_kernel
def _outside_after(
    weight: FloatArray, edges: tuple[FloatArray, FloatArray], tradable: BoolArray, slack: FloatArray
) -> int:
    """The tradable slot furthest outside its band ``edges`` (low, high) by more than its
    ``slack`` (weights), -1 where none is."""
    low, high = edges
    worst, furthest = -1, 0.0
    for j in range(weight.shape[0]):
        if tradable[j] and outside(weight[j], low[j] - slack[j], high[j] + slack[j]):
            distance = maximum(low[j] - weight[j], weight[j] - high[j])
            if worst < 0 or distance > furthest:
                worst, furthest = j, distance
    return worst


@inline_kernel
def _why_unresolved(planned: bool, any_restricted: bool, dropped: int, whole: bool) -> int:
    """Why a position stays outside its band: its destination already was, because of the
    restricted positions (whose holdings and targets the others must make up for), else how
    the orders were made. (Without a restriction every destination of a policy that trades to
    the bands is inside them: the kept cash and the targets leave exactly the account's value.)"""
    if planned and any_restricted:
        return Unresolved.RESTRICTED
    if dropped > 0:
        return Unresolved.MIN_TRADE
    return Unresolved.WHOLE_SHARES if whole else Unresolved.ROUNDING


@kernel
def step_rows(
    start: int,
    stop: int,
    inputs: StepInputs,
    settings: StepSettings,
    outputs: StepOutputs,
    scratch: StepScratch,
) -> None:
    """Every step of a run for accounts ``start:stop``, block by block: the one implementation
    of the engine's decisions, which :func:`propose` runs over a book and the backtest lab over
    one simulated account at each of its reviews."""
    quantity, price, model_target = inputs.quantity_micro, inputs.price, inputs.model_target
    used, restricted = inputs.used, inputs.restricted
    cash_cents, pending, cash_target = inputs.cash_cents, inputs.pending_cents, inputs.cash_target
    has_cash_target, has_model = inputs.has_cash_target, inputs.has_model
    can_trade, liquidate = inputs.can_trade, inputs.liquidate
    band_widths, cash_abs, cash_rel = inputs.band_widths, inputs.cash_band_abs, inputs.cash_band_rel
    run, all_accounts, trade = settings.policy, settings.all_accounts, settings.trade
    cash_reserve, rules = settings.cash_reserve, settings.rules
    o = outputs
    value, cash, total, flow = o.value, o.cash, o.total, o.flow
    cash_low, cash_high, reserve_floor = o.cash_low, o.cash_high, o.reserve_floor
    status, reason, subject, policy = o.status, o.reason, o.subject, o.policy
    cash_weight, cash_breach, cash_short = o.cash_weight, o.cash_breach, o.cash_short
    priced, weight_after = o.priced, o.weight_after
    kept_share, unresolved, unresolved_subject = o.kept_share, o.unresolved, o.unresolved_subject
    target = o.adjusted_target if cash_reserve > 0 else model_target
    band_low, band_high, rail_low, rail_high = o.band_low, o.band_high, o.rail_low, o.rail_high
    edges = (band_low, band_high, rail_low, rail_high, o.wide_low, o.wide_high)
    checked, breach, wide_breach = o.checked, o.breach, o.wide_breach
    drift_slots = (value, o.weight, o.drift, o.relative)
    trades = (o.sell_micro, o.sell_cents, o.buy_cents, o.buy_micro, o.cash_after_cents, o.dropped)
    k = quantity.shape[1]
    frozen, desired, wanted, slack = scratch.frozen, scratch.desired, scratch.wanted, scratch.slack
    work, tradable, planned = scratch.work, scratch.tradable, scratch.planned
    for first in range(start, stop, BLOCK_ACCOUNTS):
        last = min(first + BLOCK_ACCOUNTS, stop)
        # 1. Values, the targets measured against, band edges, the cash band.
        value_rows(first, last, quantity, price, used, value)
        if cash_reserve > 0:
            target_rows(first, last, model_target, cash_target, cash_reserve, o.adjusted_target)
        edge_rows(first, last, target, band_widths, edges)
        for i in range(first, last):
            cash[i] = cash_cents[i] / 100.0
            flow[i] = pending[i] / 100.0
            kept_share[i] = kept_weight(cash_target[i], cash_reserve)
            band = at(cash_abs, i, 0), at(cash_rel, i, 0)
            cash_low[i], cash_high[i] = cash_band(
                cash_target[i], has_cash_target[i], cash_reserve, band
            )
            reserve_floor[i] = cash_reserve > cash_target[i]
        # 2. Drift and statuses.
        drift_rows(
            first,
            last,
            value,
            cash,
            target,
            (band_low, band_high, o.wide_low, o.wide_high),
            used,
            (cash_low, cash_high, reserve_floor),
            drift_slots,
            (checked, breach, wide_breach),
            (total, cash_weight, cash_breach, priced, cash_short),
        )
        status_rows(
            first,
            last,
            (value, target, drift_slots[1], band_low, band_high),
            (breach, restricted, used),
            (priced, total, cash, cash_breach, cash_short),
            (has_model, can_trade, liquidate),
            flow,
            (status, reason, subject),
        )
        # 3-5. The policy each account follows, where it should end up, and its orders.
        for i in range(first, last):
            keep = account_kept_cents(total[i], pending[i], cash_target[i], cash_reserve)
            spendable = (cash_cents[i] + pending[i] - keep) / 100.0
            checkable = status[i] > _UNABLE_TO_CHECK and can_trade[i] and priced[i] and trade
            policy[i] = choice = _policy_of(
                status[i],
                checkable,
                (_any(breach, i) or cash_breach[i], _any(checked, i)),
                pending[i] != 0 or spendable < 0,
                liquidate[i],
                run,
                all_accounts,
            )
            row = tradable[i - first]
            for j in range(k):
                frozen[j] = restricted[i, j] or not used[i, j]
                row[j] = not frozen[j]
            planned[i - first] = False
            if choice == NO_POLICY:
                no_orders(i, cash_cents, trades)
                continue
            code = _POLICY_CODES[choice]
            destination_into(
                code,
                value[i],
                frozen,
                (spendable, keep / 100.0),
                target[i],
                (band_low[i], rail_low[i], rail_high[i]),
                _any(wide_breach, i),
                desired,
                work,
            )
            if aims_at_bands(code):
                basis = nan_to_num(total[i]) + flow[i]
                for j in range(k):
                    desired_weight = desired[j] / basis if basis > 0 else 0.0
                    planned[i - first] |= row[j] and outside(
                        desired_weight, band_low[i, j], band_high[i, j]
                    )
            o.cash_after_cents[i], o.dropped[i] = account_orders(
                quantity[i],
                price[i],
                desired,
                cash_cents[i],
                pending[i],
                keep,
                row,
                rules,
                (o.sell_micro[i], o.sell_cents[i], o.buy_cents[i], o.buy_micro[i]),
                wanted,
            )
        _weight_rows(
            first,
            last,
            quantity,
            price,
            used,
            priced,
            (o.sell_micro, o.buy_micro, o.cash_after_cents),
            weight_after,
        )
        # 6. Why a position the account may trade stays outside its band, where one does.
        for i in range(first, last):
            unresolved[i], unresolved_subject[i] = Unresolved.NONE, -1
            if policy[i] == NO_POLICY or not aims_at_bands(_POLICY_CODES[policy[i]]):
                continue
            basis = nan_to_num(total[i]) + flow[i]
            any_restricted = False
            for j in range(k):
                money = ROUNDING_SLACK + nan_to_num(price[i, j]) / MICRO
                slack[j] = money / basis if basis > 0 else np.inf
                any_restricted |= restricted[i, j] and used[i, j]
            worst = _outside_after(
                weight_after[i], (band_low[i], band_high[i]), tradable[i - first], slack
            )
            if worst >= 0:
                unresolved_subject[i] = worst
                unresolved[i] = _why_unresolved(
                    planned[i - first], any_restricted, o.dropped[i], rules.whole_shares
                )
