"""The simulator: V policy variants over one price history, walked in one compiled loop.

Every variant (a policy, its bands and its review schedule) is one account holding K assets, in
micro-shares and cents as a live book holds them. At every observation the loop values the
holdings and records drift and weights; at each of the variant's reviews, and at each cash flow,
it runs the live engine's own step (:func:`rebal.core.engine.step_rows`, what ``propose`` runs
over a book) on the account: the status, the policy it follows (with the cash-flow fallback for
a deposit or a withdrawal the policy leaves alone), the destination and the orders (sells
first, minimum trade, share precision, never overspending). The lab adds only what a backtest
needs around it: the review schedule and cooldowns, trading costs, and bookkeeping of values,
drift, events, turnover and realised gains. Variants are independent, so they run in batches
side by side, one thread per core.

Conventions (documented in ``docs/backtest.md``):

* Observation 0 invests the initial value at the targets (``propose --policy full`` on an
  account holding only cash), without costs; it is not an event.
* Weights and drift are recorded before any trade of the observation; weights are shares of the
  account's value, holdings and cash (the cents the orders leave uninvested).
* A review of a ``calendar`` variant is ``propose --all-accounts --policy full``; the other
  variants' reviews are ``propose --policy P`` (bands for threshold and hybrid). Between
  reviews (and during a cooldown) the policy is paused and a flow goes by the cash-flow policy
  alone, as ``propose --policy cash-flow`` places it. Buy-and-hold (``never``) takes a flow pro
  rata to its holdings, by the same order rules. A withdrawal of everything selling the
  account raises, or more, liquidates it.
* An event is a review at which the variant's own policy made at least one order.
* Costs are ``bps`` of each order's value plus ``fixed`` per order, in cents, charged to the
  account's cash: the orders are sized again, the fees counted as cash to leave or raise, until
  they cover them. A fee reduces the proceeds of its sale and raises the basis of its purchase.
* Every purchase (observation 0, a trade's buys, a flow's buys) opens a tax lot of the slot
  (observation, units, basis); every sale relieves lots by the plan's lot method (``fifo``,
  ``lifo``, ``hifo``, ``min-tax``, or ``average``: one average basis per slot, the units sold
  the oldest for the holding period, as :mod:`rebal.tax.lots` does; ``min-tax`` ranks lots as
  that module does, by tax per unit when ``LabPlan.lot_rates`` are given). Each lot part's gain is
  short or long term by :func:`rebal.tax.lots.first_long_term_day` (``LabPlan.long_from``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import numpy as np

from rebal.core import kernels
from rebal.core.bands import BandParams, Edges
from rebal.core.engine import (
    NO_POLICY,
    POLICY_NAMES,
    ChunkExecutor,
    step_outputs,
    step_rows,
    step_scratch,
)
from rebal.core.kernels import inline_kernel, kernel, row_sum
from rebal.core.policies import Policy
from rebal.core.step_arrays import KernelRules, StepInputs, StepOutputs, StepScratch, StepSettings
from rebal.core.trades import MICRO, TradeRules, account_orders
from rebal.core.types import BoolArray, FloatArray, IntArray, dense
from rebal.tax.lots import LotMethod, first_long_term_day

#: Most variants simulated per call of the compiled loop (progress is reported between calls;
#: calls run through the caller's executor at once, the loop releasing the GIL).
BATCH = 128
#: Runs smaller than this (rows x cells per row) stay in the calling thread.
PARALLEL_CELLS = 1 << 20
#: The lot methods the lab runs, by their code in the compiled loop (the index).
LAB_LOT_METHODS = (
    LotMethod.AVERAGE,
    LotMethod.FIFO,
    LotMethod.LIFO,
    LotMethod.HIFO,
    LotMethod.MIN_TAX,
)
AVERAGE, FIFO, LIFO, HIFO, MIN_TAX = range(len(LAB_LOT_METHODS))
#: ``lot_rates`` of the compiled loop when min-tax ranks lots without rates.
NO_RATES = (-1.0, -1.0)
#: A lot part smaller than this fraction of the lot is float noise: the whole lot goes.
LOT_NOISE = 1e-12


@dataclass(frozen=True, slots=True)
class Costs:
    """Trading costs: ``bps`` of traded value plus ``fixed`` currency units per slot traded."""

    bps: float = 0.0
    fixed: float = 0.0


@dataclass(frozen=True, slots=True)
class LabPlan:
    """Everything one simulation needs, as arrays.

    ``policies`` holds the distinct policy objects (``None`` = never trade); ``policy_idx``
    (V,) points each variant at one. ``reviews`` (S, T) holds the distinct review masks and
    ``review_idx`` (V,) points each variant at one; ``cooldown`` (V,) is how many observations
    a variant's reviews pause after each of its trades. ``flows`` (T,) is the cash added at each
    observation (negative = withdrawn), the same for every variant.
    """

    prices: FloatArray
    target: FloatArray
    bands: BandParams  # (V, K) widths of each variant's bands, rails and wide bands
    edges: Edges  # (V, K) the edges those widths place around the targets
    policies: tuple[Policy | None, ...]
    policy_idx: IntArray
    reviews: BoolArray
    review_idx: IntArray
    cooldown: IntArray
    initial: float
    flows: FloatArray
    costs: Costs
    year: IntArray  # (T,) calendar year of each observation (realised gains are booked by it)
    #: How sales relieve lots (one of :data:`LAB_LOT_METHODS`).
    lots: LotMethod = LotMethod.AVERAGE
    #: (T,) for a lot bought at observation t, the first observation at which it is long term
    #: (T when none is; :func:`long_term_from`). None: every gain counts as short term.
    long_from: IntArray | None = None
    #: (short-term, long-term) rates ``min-tax`` ranks lots by, tax per unit; None: losses
    #: first, then long-term gains, then short-term ones (as :mod:`rebal.tax.lots` without rates).
    lot_rates: tuple[float, float] | None = None
    #: How desired values become orders (share precision, minimum trade), as in ``propose``.
    rules: TradeRules = field(default_factory=TradeRules)


@dataclass(frozen=True, slots=True)
class SimResult:
    """What a simulation records, per variant (rows) and observation (columns)."""

    value: FloatArray  # (V, T) portfolio value after the trades, costs and flows of each date
    flow_times: IntArray  # (F,) observations with a cash flow
    flow_done: FloatArray  # (V, F) the flow actually made (a withdrawal is capped at the value)
    events: IntArray  # (V,) trades made by the policy
    turnover: FloatArray  # (V,) sum over trades of (sum|trade| - |flow|) / 2 / value before
    costs: FloatArray  # (V,) trading costs paid
    realised: FloatArray  # (V,) net realised gains of all sales, by the plan's lot method
    realised_by_year: FloatArray  # (V, Y) the same by calendar year of the trade date
    realised_st_by_year: FloatArray  # (V, Y) its short-term part (lots held one year or less)
    realised_lt_by_year: FloatArray  # (V, Y) its long-term part (held more than one year)
    years: IntArray  # (Y,) the calendar years of the history, in order
    drift_sum: FloatArray  # (V,) sum over observations 1..T-1 of max_k |weight - target|
    drift_max: FloatArray  # (V,) max over observations of max_k |weight - target|
    weight_sum: FloatArray  # (V, K) sum over observations 1..T-1 of the weights
    weights: FloatArray | None  # (V, T, K) weights before trading, when recorded
    traded: BoolArray  # (V, T) observations at which each variant traded by its policy
    #: (V, T, K) when recorded: the value each trade by the policy added to (+) or took from
    #: (-) each asset, its flow and costs included; 0 where the variant did not trade.
    trades: FloatArray | None = None

    def event_dates(self, row: int) -> IntArray:
        """Observations at which variant ``row`` traded by its policy, in order."""
        return np.flatnonzero(self.traded[row])


def long_term_from(dates: np.ndarray) -> IntArray:
    """For each observation t of ``dates`` (datetime64[D], increasing), the first observation
    at which a lot bought at t is long term (``len(dates)`` when none is), by
    :func:`rebal.tax.lots.first_long_term_day`. Cached per dates: the rule costs about 2 us
    per date in Python, more than a whole one-variant simulation of 20 years of days."""
    days = np.ascontiguousarray(dates, dtype="datetime64[D]")
    return _long_term_from(days.tobytes()).copy()


@lru_cache(maxsize=8)
def _long_term_from(days: bytes) -> IntArray:
    dates = np.frombuffer(days, dtype="datetime64[D]")
    first = np.array([first_long_term_day(d) for d in dates.tolist()], dtype="datetime64[D]")
    out: IntArray = np.searchsorted(dates, first).astype(np.int64)
    return out


@inline_kernel
def _open_lot(
    j: int,
    t: int,
    units: float,
    cost: float,
    lot_units: FloatArray,
    lot_cost: FloatArray,
    lot_time: IntArray,
    span: IntArray,
) -> None:
    """Append a lot of slot ``j`` bought at observation ``t``; ``span[j]`` = [first, end)."""
    end = span[j, 1]
    lot_units[j, end] = units
    lot_cost[j, end] = cost
    lot_time[j, end] = t
    span[j, 1] = end + 1


@inline_kernel
def _next_lot(
    method: int,
    rates: tuple[float, float],
    j: int,
    t: int,
    price: float,
    long_from: IntArray,
    lot_units: FloatArray,
    lot_cost: FloatArray,
    lot_time: IntArray,
    span: IntArray,
) -> int:
    """The lot of slot ``j`` a sale at ``price`` at observation ``t`` takes next: oldest (fifo,
    average), newest (lifo), the highest cost per unit (hifo) or the least tax per unit
    (min-tax, :func:`rebal.tax.lots.relief_order`'s ranking); older first on ties."""
    first, end = int(span[j, 0]), int(span[j, 1])
    if method == LIFO:
        return end - 1
    if method not in (HIFO, MIN_TAX):
        return first
    best, best_rank, best_key = first, 3, np.inf
    for i in range(first, end):
        if not lot_units[j, i] > 0:
            continue
        per_unit = lot_cost[j, i] / lot_units[j, i]
        if method == HIFO:
            rank, key = 0, -per_unit
        else:
            gain = price - per_unit
            long = t >= long_from[lot_time[j, i]]
            if rates[0] >= 0:  # by tax per unit
                rank, key = 0, gain * (rates[1] if long else rates[0])
            else:  # losses, then long-term gains, then short-term ones
                rank, key = (0 if gain <= 0 else 1 if long else 2), gain
        if rank < best_rank or (rank == best_rank and key < best_key):
            best, best_rank, best_key = i, rank, key
    return best


@inline_kernel
def _relieve(
    method: int,
    rates: tuple[float, float],
    j: int,
    t: int,
    sold: float,
    everything: bool,
    price: float,
    average: float,
    long_from: IntArray,
    lot_units: FloatArray,
    lot_cost: FloatArray,
    lot_time: IntArray,
    span: IntArray,
) -> tuple[float, float, float]:
    """Sell ``sold`` units of slot ``j`` at ``price`` out of its lots by ``method`` (all of
    them when ``everything``; min-tax ranks lots by ``rates``, :data:`NO_RATES` for none);
    returns the basis relieved and the short- and long-term gains.
    ``average`` is the slot's cost per unit, the basis of every unit under ``average``."""
    relieved, short, long = 0.0, 0.0, 0.0
    left = sold
    while span[j, 0] < span[j, 1] and (everything or left > LOT_NOISE * sold):
        i = _next_lot(method, rates, j, t, price, long_from, lot_units, lot_cost, lot_time, span)
        have = lot_units[j, i]
        take = have if everything or left >= have * (1.0 - LOT_NOISE) else left
        cost = average * take if method == AVERAGE else lot_cost[j, i] * (take / have)
        gain = take * price - cost
        if t >= long_from[lot_time[j, i]]:
            long += gain
        else:
            short += gain
        relieved += cost
        left -= take
        if take == have:
            lot_units[j, i], lot_cost[j, i] = 0.0, 0.0
        else:
            lot_units[j, i] = have - take
            lot_cost[j, i] -= cost
        while span[j, 0] < span[j, 1] and lot_units[j, span[j, 0]] == 0:
            span[j, 0] += 1
        while span[j, 0] < span[j, 1] and lot_units[j, span[j, 1] - 1] == 0:
            span[j, 1] -= 1
    return relieved, short, long


@inline_kernel
def _fees(
    orders: tuple[IntArray, IntArray, IntArray, IntArray], bps: float, fixed: float, out: FloatArray
) -> tuple[float, float]:
    """The fee of each slot's order into ``out`` (``bps`` of its value plus ``fixed``, rounded
    to the cent: it is charged to the account's cash); returns the total and the value traded,
    both in currency."""
    sell_micro, sell_cents, buy_cents, _buy_micro = orders
    total, traded = 0.0, 0.0
    for j in range(out.shape[0]):
        value = (sell_cents[j] + buy_cents[j]) / 100.0
        fee = bps * 1e-4 * value + fixed if sell_micro[j] > 0 or buy_cents[j] > 0 else 0.0
        out[j] = np.rint(fee * 100.0) / 100.0
        total += out[j]
        traded += value
    return total, traded


@kernel
def _settle(
    orders: tuple[IntArray, IntArray, IntArray, IntArray],
    fee: FloatArray,
    t: int,
    quantity: IntArray,
    basis: FloatArray,
    method: int,
    rates: tuple[float, float],
    long_from: IntArray,
    lots: tuple[FloatArray, FloatArray, IntArray, IntArray],
) -> tuple[float, float]:
    """Carry out ``orders`` (sold micro-shares and their proceeds in cents, bought cents and
    micro-shares) at observation ``t``, each slot paying its ``fee``: updates ``quantity``, the
    slots' total ``basis`` and their ``lots``; returns the gain realised and its long-term part.

    A fee reduces the proceeds of the sale it is paid on and raises the basis of the purchase,
    as the IRS treats selling expenses and acquisition costs: costs never raise a gain.
    """
    sell_micro, sell_cents, buy_cents, buy_micro = orders
    lot_units, lot_cost, lot_time, span = lots
    gain, long = 0.0, 0.0
    for j in range(quantity.shape[0]):
        if sell_micro[j] > 0:
            units = sell_micro[j] / MICRO
            held = quantity[j] / MICRO
            proceeds = sell_cents[j] / 100.0 - fee[j]
            relieved, st, lt = _relieve(
                method,
                rates,
                j,
                t,
                units,
                sell_micro[j] >= quantity[j],
                proceeds / units,
                basis[j] / held,
                long_from,
                lot_units,
                lot_cost,
                lot_time,
                span,
            )
            gain += st + lt
            long += lt
            quantity[j] -= sell_micro[j]
            basis[j] = basis[j] - relieved if quantity[j] > 0 else 0.0
        if buy_cents[j] > 0 and buy_micro[j] > 0:
            cost = buy_cents[j] / 100.0 + fee[j]
            _open_lot(j, t, buy_micro[j] / MICRO, cost, lot_units, lot_cost, lot_time, span)
            quantity[j] += buy_micro[j]
            basis[j] += cost
    return gain, long


@kernel
def _account_inputs(k: int) -> Any:
    """A one-account book of ``k`` slots as the live engine's step reads it
    (:class:`~rebal.core.step_arrays.StepInputs`; zero holdings and cash; prices, targets and
    widths to be filled in): every slot used and unrestricted, a model without a cash row, no
    liquidation."""
    return StepInputs(
        np.zeros((1, k), dtype=np.int64),
        np.empty((1, k)),
        np.empty((1, k)),
        np.ones((1, k), dtype=np.bool_),
        np.zeros((1, k), dtype=np.bool_),
        np.zeros(1, dtype=np.int64),
        np.zeros(1, dtype=np.int64),
        np.zeros(1),
        np.zeros(1, dtype=np.bool_),
        np.ones(1, dtype=np.bool_),
        np.ones(1, dtype=np.bool_),
        np.zeros(1, dtype=np.bool_),
        (
            np.empty((1, k)),
            np.empty((1, k)),
            np.empty((1, k)),
            np.empty((1, k)),
            np.empty((1, k)),
            np.empty((1, k)),
        ),
        np.full((1, 1), np.nan),
        np.full((1, 1), np.nan),
    )


@inline_kernel
def _account_orders(outputs: StepOutputs) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """The orders of the one account of ``outputs``: sold micro-shares, their proceeds, bought
    cents and micro-shares, per slot."""
    o = outputs
    return o.sell_micro[0], o.sell_cents[0], o.buy_cents[0], o.buy_micro[0]


@kernel
def _review(
    inputs: StepInputs,
    outputs: StepOutputs,
    scratch: StepScratch,
    policy: tuple[int, bool],
    costs: tuple[float, float],
    rules: KernelRules,
    fee: FloatArray,
) -> tuple[int, int, float, float]:
    """The orders of the variant held in ``inputs`` (a book of one account, its pending flow
    set), written into ``outputs``: by the live engine's step (:func:`step_rows`) under the
    variant's policy code when a review is due, ``policy`` = (code, due), and by the cash-flow
    policy alone between reviews; a buy-and-hold variant (no code) takes a flow pro rata.
    Returns the policy that traded (``NO_POLICY``: none), the cash after the orders and their
    fees (cents), the fees and the value traded (currency); ``fee`` receives each slot's fee.

    The fees are cash the orders must leave, or raise: the orders are sized again, the fees
    paid out of the flow, until they cover them."""
    quantity, price, goal = inputs.quantity_micro, inputs.price, inputs.model_target
    cash, flow = inputs.cash_cents, inputs.pending_cents[0]
    code, due = policy
    orders = _account_orders(outputs)
    chosen = outputs.policy
    desired, wanted, tradable = scratch.desired, scratch.wanted, scratch.tradable[0]
    if code == NO_POLICY:
        invested = 0.0
        for j in range(desired.shape[0]):
            desired[j] = quantity[0, j] / MICRO * price[0, j]
            invested += desired[j]
        budget = max(invested + (cash[0] + flow) / 100.0, 0.0)
        for j in range(desired.shape[0]):
            desired[j] = desired[j] / invested * budget if invested > 0 else budget * goal[0, j]
            tradable[j] = True
        chosen[0] = NO_POLICY
        cash_after, _ = account_orders(
            quantity[0], price[0], desired, cash[0], flow, 0, tradable, rules, orders, wanted
        )
    else:
        # A calendar review trades every account (``propose --all-accounts``); the other
        # policies trade only the accounts their trigger picks.
        run = code if due else kernels.CASH_FLOW
        settings = StepSettings(run, code == kernels.FULL, True, 0.0, rules)
        step_rows(0, 1, inputs, settings, outputs, scratch)
        if chosen[0] == NO_POLICY:
            return NO_POLICY, cash[0] + flow, 0.0, 0.0
        cash_after = outputs.cash_after_cents[0]
    paid, moved = _fees(orders, costs[0], costs[1], fee)
    reserved = 0
    while int(np.rint(paid * 100.0)) > reserved:
        reserved = int(np.rint(paid * 100.0))
        cash_after, _ = account_orders(
            quantity[0],
            price[0],
            desired,
            cash[0],
            flow - reserved,
            0,
            tradable,
            rules,
            orders,
            wanted,
        )
        paid, moved = _fees(orders, costs[0], costs[1], fee)
    return chosen[0], cash_after + reserved - int(np.rint(paid * 100.0)), paid, moved


@kernel
def _walk(
    prices: FloatArray,
    target: FloatArray,
    band_widths: tuple[FloatArray, ...],
    codes: IntArray,
    reviews: BoolArray,
    review_idx: IntArray,
    cooldown: IntArray,
    initial: float,
    flows: FloatArray,
    costs_in: tuple[float, float],
    rules: KernelRules,
    year_slot: IntArray,
    lot_method: int,
    lot_rates: tuple[float, float],
    long_from: IntArray,
    record: bool,
    out: tuple[np.ndarray, ...],  # float64 arrays, but the int64 events
    traded: BoolArray,
    weights: FloatArray,
    trades: FloatArray,
) -> None:
    """Simulate every variant (row) of the arrays; results go into ``out``, ``traded`` and
    (when ``record``) ``weights`` and ``trades``, as described by :class:`SimResult`."""
    (
        value,
        flow_done,
        events,
        turnover,
        costs,
        realised,
        by_year,
        st_by_year,
        lt_by_year,
        drift_sum,
        drift_max,
        wsum,
    ) = out
    n_obs, k = prices.shape
    # Lots of the variant being walked, per slot in [span[j, 0], span[j, 1]): every trade opens
    # at most one lot per slot, so the observations bound how many there can be.
    lots = (
        np.empty((k, n_obs)),
        np.empty((k, n_obs)),
        np.empty((k, n_obs), dtype=np.int64),
        np.empty((k, 2), dtype=np.int64),
    )
    span = lots[3]
    # The variant as a one-account book, stepped by the live engine's own kernel.
    inputs = _account_inputs(k)
    quantity, price, goal = inputs.quantity_micro, inputs.price, inputs.model_target
    cash, pending = inputs.cash_cents, inputs.pending_cents
    liquidate, widths = inputs.liquidate, inputs.band_widths
    outputs = step_outputs(1, k, False)
    scratch = step_scratch(k)
    orders = _account_orders(outputs)
    held = np.empty(k)
    weight = np.zeros(k)
    fee = np.empty(k)
    basis = np.empty(k)
    for v in range(target.shape[0]):
        code = codes[v]
        for j in range(k):
            goal[0, j] = target[v, j]
            for w in range(len(widths)):
                widths[w][0, j] = band_widths[w][v, j]
            quantity[0, j] = 0
            price[0, j] = prices[0, j]
            basis[j] = 0.0
        # Observation 0 invests the initial cash at the targets: ``propose --policy full``.
        cash[0], pending[0] = int(np.rint(initial * 100.0)), 0
        _, cash[0], _, _ = _review(
            inputs, outputs, scratch, (kernels.FULL, True), (0.0, 0.0), rules, fee
        )
        span[:] = 0
        _settle(orders, fee, 0, quantity[0], basis, lot_method, lot_rates, long_from, lots)
        value[v, 0] = row_sum(quantity[0] / MICRO * prices[0]) + cash[0] / 100.0
        if record:
            weights[v, 0] = target[v]
        next_review = 0
        slot = 0
        review = reviews[review_idx[v]]
        weight_total = np.zeros(k)
        worst_sum, worst_max = 0.0, 0.0
        for t in range(1, n_obs):
            invested = 0.0
            for j in range(k):
                held[j] = quantity[0, j] / MICRO * prices[t, j]
                invested += held[j]
            total = invested + cash[0] / 100.0
            # The state before trading: an emptied portfolio has no weights and no drift.
            if total > 0:
                worst = 0.0
                for j in range(k):
                    weight[j] = held[j] * (1.0 / total)
                    worst = max(worst, abs(weight[j] - target[v, j]))
                    weight_total[j] += weight[j]
                worst_sum += worst
                worst_max = max(worst_max, worst)
            else:
                weight[:] = 0.0
            value[v, t] = total
            if record:
                weights[v, t] = weight
            flow, everything = 0, 0
            if flows[t] != 0:  # a withdrawal of what selling everything raises, or more,
                everything = cash[0]  # liquidates the account
                for j in range(k):
                    everything += int(np.rint(quantity[0, j] / MICRO * prices[t, j] * 100.0))
                flow = max(int(np.rint(flows[t] * 100.0)), -everything)
                flow_done[v, slot] = flow / 100.0
                slot += 1
            liquidate[0] = flow < 0 and flow == -everything
            due = code != NO_POLICY and review[t] and t >= next_review
            if not due and flow == 0:
                continue
            for j in range(k):
                price[0, j] = prices[t, j]
            pending[0] = flow
            chosen, cash_after, paid, moved = _review(
                inputs, outputs, scratch, (code, due), costs_in, rules, fee
            )
            if chosen == NO_POLICY and code != NO_POLICY:
                cash[0] = cash_after
                continue
            if code != NO_POLICY and chosen == code and moved > 0:
                events[v] += 1
                traded[v, t] = True
                next_review = t + 1 + cooldown[v]  # pauses reviews t+1 .. t+cooldown
            gain, long = _settle(
                orders, fee, t, quantity[0], basis, lot_method, lot_rates, long_from, lots
            )
            cash[0] = cash_after
            after = cash[0] / 100.0
            for j in range(k):
                after += quantity[0, j] / MICRO * prices[t, j]
            value[v, t] = after
            if record and traded[v, t]:
                for j in range(k):
                    trades[v, t, j] = quantity[0, j] / MICRO * prices[t, j] - held[j]
            costs[v] += paid
            turnover[v] += max(moved - abs(flow / 100.0), 0.0) / 2 / total if total > 0 else 0.0
            realised[v] += gain
            by_year[v, year_slot[t]] += gain
            st_by_year[v, year_slot[t]] += gain - long
            lt_by_year[v, year_slot[t]] += long
        wsum[v] = weight_total
        drift_sum[v] = worst_sum
        drift_max[v] = worst_max


class LabExecutor(ChunkExecutor, Protocol):
    """Where the lab's batches of variants run (:class:`rebal.ports.executor.Executor`'s shape):
    an order-keeping ``map`` and how many items it runs at once."""

    workers: int


def in_batches(
    n: int,
    cells_per_row: int,
    work: Callable[[slice], None],
    executor: LabExecutor | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> None:
    """Call ``work`` on batches of the rows ``range(n)``, through ``executor`` when the work is
    large (one after the other in this thread when none is given).

    ``work`` must release the GIL (a compiled kernel) and write only its own rows.
    ``on_progress`` is called with the fraction of rows done after each batch.
    """
    # Small runs stay in this thread: starting workers would cost more than it saves.
    parallel = executor is not None and executor.workers > 1 and n * cells_per_row >= PARALLEL_CELLS
    workers = executor.workers if parallel and executor is not None else 1
    size = min(BATCH, -(-n // workers))  # every worker busy, however few the rows
    batches = [slice(start, min(start + size, n)) for start in range(0, n, size)]

    def step(rows: slice) -> int:
        work(rows)
        return int(rows.stop - rows.start)

    done = 0
    counts = (
        executor.map(step, batches) if parallel and executor is not None else map(step, batches)
    )
    for count in counts:
        done += count
        if on_progress is not None:
            on_progress(done / n)


def simulate(
    plan: LabPlan,
    *,
    record_weights: bool = False,
    on_progress: Callable[[float], None] | None = None,
    executor: LabExecutor | None = None,
) -> SimResult:
    """Run every variant of ``plan`` over the whole history and return what it recorded, the
    variants in batches through ``executor`` (see :func:`in_batches`).

    ``record_weights`` keeps the (V, T, K) weight paths (for plots) and the trades of every
    rebalance (memory grows with V).
    ``on_progress`` is called with the fraction of variants done.
    """
    n_obs, k = plan.prices.shape
    n = plan.target.shape[0]
    new_year = np.ones(n_obs, dtype=bool)
    np.not_equal(plan.year[1:], plan.year[:-1], out=new_year[1:])
    years = plan.year[new_year]
    year_slot = np.cumsum(new_year) - 1  # (T,) into years
    flow_times = np.flatnonzero(plan.flows[1:]) + 1
    value = np.zeros((n, n_obs))
    flow_done = np.zeros((n, len(flow_times)))
    events = np.zeros(n, dtype=np.int64)
    turnover, costs, realised = np.zeros(n), np.zeros(n), np.zeros(n)
    by_year = np.zeros((n, len(years)))
    st_by_year, lt_by_year = np.zeros_like(by_year), np.zeros_like(by_year)
    if plan.lots not in LAB_LOT_METHODS:
        raise ValueError(f"the lab relieves lots by {', '.join(LAB_LOT_METHODS)}, not {plan.lots}")
    lot_method = LAB_LOT_METHODS.index(plan.lots)
    short_rate, long_rate = NO_RATES if plan.lot_rates is None else plan.lot_rates
    lot_rates = (float(short_rate), float(long_rate))
    long_from = np.ascontiguousarray(
        np.full(n_obs, n_obs) if plan.long_from is None else plan.long_from, dtype=np.int64
    )
    drift_sum, drift_max, weight_sum = np.zeros(n), np.zeros(n), np.zeros((n, k))
    traded = np.zeros((n, n_obs), dtype=bool)
    weights = np.zeros((n, n_obs, k) if record_weights else (1, 1, k))
    trades = np.zeros_like(weights)
    codes = np.array(
        [NO_POLICY if p is None else POLICY_NAMES.index(p.name) for p in plan.policies],
        dtype=np.int64,
    )[plan.policy_idx]
    shape = plan.target.shape
    prices, flows = dense(plan.prices), dense(plan.flows.astype(np.float64))
    target = dense(plan.target)
    band_widths = tuple(dense(getattr(plan.bands, f), shape) for f in BandParams.__slots__)

    def run(rows: slice) -> None:
        _walk(
            prices,
            target[rows],
            tuple(w[rows] for w in band_widths),
            codes[rows],
            plan.reviews,
            plan.review_idx[rows],
            plan.cooldown[rows],
            float(plan.initial),
            flows,
            (float(plan.costs.bps), float(plan.costs.fixed)),
            plan.rules.as_kernel_args(),
            year_slot,
            lot_method,
            lot_rates,
            long_from,
            record_weights,
            (
                value[rows],
                flow_done[rows],
                events[rows],
                turnover[rows],
                costs[rows],
                realised[rows],
                by_year[rows],
                st_by_year[rows],
                lt_by_year[rows],
                drift_sum[rows],
                drift_max[rows],
                weight_sum[rows],
            ),
            traded[rows],
            weights[rows] if record_weights else weights,
            trades[rows] if record_weights else trades,
        )

    in_batches(n, n_obs * k, run, executor, on_progress)
    return SimResult(
        value=value,
        flow_times=flow_times,
        flow_done=flow_done,
        events=events,
        turnover=turnover,
        costs=costs,
        realised=realised,
        realised_by_year=by_year,
        realised_st_by_year=st_by_year,
        realised_lt_by_year=lt_by_year,
        years=years,
        drift_sum=drift_sum,
        drift_max=drift_max,
        weight_sum=weight_sum,
        weights=weights if record_weights else None,
        traded=traded,
        trades=trades if record_weights else None,
    )
