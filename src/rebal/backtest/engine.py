"""The simulator: V policy variants over one price history, walked in one compiled loop.

Every variant (a policy, its bands and its review schedule) holds K assets. At every
observation the loop values the holdings, records drift and weights, and on the variant's
review dates asks the core's own kernels (:mod:`rebal.core.kernels`) whether its policy trades
(:func:`~rebal.core.kernels.any_outside` of the bands, :func:`~rebal.core.kernels.wants`) and
where to (:func:`~rebal.core.kernels.destination`): the functions the book-wide policies of
:mod:`rebal.core.policies` run over every account of a live book. The lab adds only what a
backtest needs around them: the review schedule and cooldowns, cash flows, trading costs, and
bookkeeping of values, drift, events, turnover and realised gains. Variants are independent,
so they run in batches side by side, one thread per core.

Conventions (documented in ``docs/backtest.md``):

* Observation 0 buys the targets at their weights, without costs; it is not an event.
* Weights and drift are recorded before any trade of the observation.
* Costs are ``bps`` of the traded value plus ``fixed`` per slot traded; they are paid out of
  the portfolio by scaling the post-trade values down (weights stay where the policy put them).
* A flow at an observation goes to the policy when the variant trades then (as spendable
  cash); otherwise a cash-flow policy places it (most underweight first, most overweight
  first for withdrawals; an event) and every other policy buys or sells pro rata to current
  holdings. A withdrawal larger than the portfolio empties it.
* Every purchase (observation 0, a trade's buys, a flow's pro-rata buys) opens a tax lot of
  the slot (observation, units, basis); every sale relieves lots by the plan's lot method
  (``fifo``, ``lifo``, ``hifo``, ``min-tax``, or ``average``: one average basis per slot, the
  units sold the oldest for the holding period, as :mod:`rebal.tax.lots` does; ``min-tax``
  ranks lots as that module does, by tax per unit when ``Plan.lot_rates`` are given). Each lot
  part's gain is short or long term by :func:`rebal.tax.lots.first_long_term_day`
  (``Plan.long_from``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from rebal.core import kernels
from rebal.core.bands import Edges
from rebal.core.kernels import inline_kernel, kernel
from rebal.core.policies import Policy
from rebal.core.types import BoolArray, FloatArray, IntArray, dense
from rebal.tax.lots import LotMethod, first_long_term_day

#: A trade smaller than this fraction of the portfolio is float noise, not a trade.
NOISE = 1e-9
#: Most variants simulated per call of the compiled loop (progress is reported between calls;
#: calls run on every core at once, the loop releasing the GIL).
BATCH = 128
#: Runs smaller than this (rows x cells per row) stay in the calling thread.
PARALLEL_CELLS = 1 << 20
#: No policy: the variant never trades by itself (flows go pro rata).
NO_POLICY = -1
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
class Plan:
    """Everything one simulation needs, as arrays.

    ``policies`` holds the distinct policy objects (``None`` = never trade); ``policy_idx``
    (V,) points each variant at one. ``reviews`` (S, T) holds the distinct review masks and
    ``review_idx`` (V,) points each variant at one; ``cooldown`` (V,) is how many observations
    a variant's reviews pause after each of its trades. ``flows`` (T,) is the cash added at each
    observation (negative = withdrawn), the same for every variant.
    """

    prices: FloatArray
    target: FloatArray
    edges: Edges
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


@kernel
def _settle(
    held: FloatArray,
    desired: FloatArray,
    flow: float,
    t: int,
    price: FloatArray,
    bps: float,
    fixed: float,
    units: FloatArray,
    basis: FloatArray,
    method: int,
    rates: tuple[float, float],
    long_from: IntArray,
    lot_units: FloatArray,
    lot_cost: FloatArray,
    lot_time: IntArray,
    span: IntArray,
) -> tuple[float, float, float, float, float]:
    """Move ``held`` to ``desired`` less costs at observation ``t``: sets ``units``, the slots'
    total ``basis`` and their lots; returns the value after, the cost paid, the turnover
    (one-way, excluding the flow, as a fraction of the value before), the gain realised and
    its long-term part.

    Under ``average`` a sale of a fraction f of a slot realises ``f x (value - basis)`` in
    total, exactly as before lots existed; the lots only say which part of it is long term.
    """
    k = held.shape[0]
    total = held.sum()
    size = max(total, abs(flow))
    traded = 0.0
    count = 0
    post = 0.0
    for j in range(k):
        move = abs(desired[j] - held[j])
        traded += move
        count += move > NOISE * size
        post += desired[j]
    cost = min(bps * 1e-4 * traded + fixed * count, post)
    scale = (post - cost) / post if post > 0 else 0.0
    churn = max(traded - abs(flow), 0.0) / 2 / total if total > 0 else 0.0
    gain, long = 0.0, 0.0
    after = 0.0
    for j in range(k):
        final = desired[j] * scale
        after += final
        if final < held[j]:
            fraction = (held[j] - final) / held[j]
            relieved, st, lt = _relieve(
                method,
                rates,
                j,
                t,
                units[j] * fraction,
                final <= 0,
                price[j],
                basis[j] / units[j],
                long_from,
                lot_units,
                lot_cost,
                lot_time,
                span,
            )
            if method == AVERAGE:  # the total as one average basis gives it; lots split it
                gain += held[j] - final - basis[j] * fraction
                basis[j] *= 1.0 - fraction
            else:
                gain += st + lt
                basis[j] -= relieved
            long += lt
        elif final > held[j]:
            _open_lot(
                j,
                t,
                (final - held[j]) / price[j],
                final - held[j],
                lot_units,
                lot_cost,
                lot_time,
                span,
            )
            basis[j] += final - held[j]
        units[j] = final / price[j]
    return after, cost, churn, gain, long


@kernel
def _walk(
    prices: FloatArray,
    target: FloatArray,
    band_low: FloatArray,
    band_high: FloatArray,
    rail_low: FloatArray,
    rail_high: FloatArray,
    wide_low: FloatArray,
    wide_high: FloatArray,
    codes: IntArray,
    reviews: BoolArray,
    review_idx: IntArray,
    cooldown: IntArray,
    initial: float,
    flows: FloatArray,
    bps: float,
    fixed: float,
    year_slot: IntArray,
    lot_method: int,
    lot_rates: tuple[float, float],
    long_from: IntArray,
    record: bool,
    out: tuple[np.ndarray, ...],  # float64 arrays, but the int64 events
    traded: BoolArray,
    weights: FloatArray,
) -> None:
    """Simulate every variant (row) of the arrays; results go into ``out``, ``traded`` and
    (when ``record``) ``weights``, as described by :class:`SimResult`."""
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
    lot_units, lot_cost = np.empty((k, n_obs)), np.empty((k, n_obs))
    lot_time = np.empty((k, n_obs), dtype=np.int64)
    span = np.empty((k, 2), dtype=np.int64)
    for v in range(target.shape[0]):
        code = codes[v]
        goal = target[v]
        units = initial * goal / prices[0]
        basis = initial * goal
        span[:] = 0
        for j in range(k):
            if units[j] > 0:
                _open_lot(j, 0, units[j], basis[j], lot_units, lot_cost, lot_time, span)
        held = np.empty(k)
        weight = np.zeros(k)
        desired = np.empty(k)
        frozen = np.zeros(k, dtype=np.bool_)
        value[v, 0] = initial
        if record:
            weights[v, 0] = goal
        next_review = 0
        slot = 0
        review = reviews[review_idx[v]]
        low, high, rails, wide_lo, wide_hi = (
            band_low[v],
            band_high[v],
            (band_low[v], rail_low[v], rail_high[v]),
            wide_low[v],
            wide_high[v],
        )
        weight_total = np.zeros(k)
        worst_sum, worst_max = 0.0, 0.0
        for t in range(1, n_obs):
            total = 0.0
            for j in range(k):
                held[j] = units[j] * prices[t, j]
                total += held[j]
            # The state before trading: an emptied portfolio has no weights and no drift.
            if total > 0:
                worst = 0.0
                for j in range(k):
                    weight[j] = held[j] * (1.0 / total)
                    worst = max(worst, abs(weight[j] - goal[j]))
                    weight_total[j] += weight[j]
                worst_sum += worst
                worst_max = max(worst_max, worst)
            else:
                weight[:] = 0.0
            value[v, t] = total
            if record:
                weights[v, t] = weight
            flow = flows[t]
            if flow != 0:
                flow = max(flow, -total)
                flow_done[v, slot] = flow
                slot += 1
            by_policy = False
            if code != NO_POLICY and review[t] and t >= next_review:
                breach = total > 0 and kernels.any_outside(weight, low, high)
                by_policy = kernels.wants(code, breach, total > 0)
            if by_policy or (code == kernels.CASH_FLOW and flow != 0):
                wide = total > 0 and kernels.any_outside(weight, wide_lo, wide_hi)
                kernels.destination(code, held, frozen, (flow, 0.0), goal, rails, wide, desired)
                events[v] += 1
                traded[v, t] = True
                next_review = t + 1 + cooldown[v]  # pauses reviews t+1 .. t+cooldown
            elif flow != 0:  # pro rata to holdings
                for j in range(k):
                    desired[j] = (
                        held[j] * (total + flow) / total
                        if total > 0
                        else (max(flow, 0.0) * goal[j])
                    )
            else:
                continue
            after, cost, churn, gain, long = _settle(
                held,
                desired,
                flow,
                t,
                prices[t],
                bps,
                fixed,
                units,
                basis,
                lot_method,
                lot_rates,
                long_from,
                lot_units,
                lot_cost,
                lot_time,
                span,
            )
            value[v, t] = after
            costs[v] += cost
            turnover[v] += churn
            realised[v] += gain
            by_year[v, year_slot[t]] += gain
            st_by_year[v, year_slot[t]] += gain - long
            lt_by_year[v, year_slot[t]] += long
        wsum[v] = weight_total
        drift_sum[v] = worst_sum
        drift_max[v] = worst_max


def in_batches(
    n: int,
    cells_per_row: int,
    work: Callable[[slice], None],
    on_progress: Callable[[float], None] | None = None,
) -> None:
    """Call ``work`` on batches of the rows ``range(n)``, on every core when the work is large.

    ``work`` must release the GIL (a compiled kernel) and write only its own rows.
    ``on_progress`` is called with the fraction of rows done after each batch.
    """
    # Small runs stay in this thread: starting workers would cost more than it saves.
    workers = 1 if n * cells_per_row < PARALLEL_CELLS else os.cpu_count() or 1
    size = min(BATCH, -(-n // workers))  # every worker busy, however few the rows
    batches = [slice(start, min(start + size, n)) for start in range(0, n, size)]

    def step(rows: slice) -> int:
        work(rows)
        return int(rows.stop - rows.start)

    done = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:  # threads start on first use
        for count in pool.map(step, batches) if workers > 1 else map(step, batches):
            done += count
            if on_progress is not None:
                on_progress(done / n)


def simulate(
    plan: Plan,
    *,
    record_weights: bool = False,
    on_progress: Callable[[float], None] | None = None,
) -> SimResult:
    """Run every variant of ``plan`` over the whole history and return what it recorded.

    ``record_weights`` keeps the (V, T, K) weight paths (for plots; memory grows with V).
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
    codes = np.array([NO_POLICY if p is None else p.code for p in plan.policies])[plan.policy_idx]
    edges = plan.edges
    shape = plan.target.shape
    prices, flows = dense(plan.prices), dense(plan.flows.astype(np.float64))
    target = dense(plan.target)
    band_low, band_high = dense(edges.band_low, shape), dense(edges.band_high, shape)
    rail_low, rail_high = dense(edges.rail_low, shape), dense(edges.rail_high, shape)
    wide_low, wide_high = dense(edges.wide_low, shape), dense(edges.wide_high, shape)

    def run(rows: slice) -> None:
        _walk(
            prices,
            target[rows],
            band_low[rows],
            band_high[rows],
            rail_low[rows],
            rail_high[rows],
            wide_low[rows],
            wide_high[rows],
            codes[rows],
            plan.reviews,
            plan.review_idx[rows],
            plan.cooldown[rows],
            float(plan.initial),
            flows,
            float(plan.costs.bps),
            float(plan.costs.fixed),
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
        )

    in_batches(n, n_obs * k, run, on_progress)
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
    )
