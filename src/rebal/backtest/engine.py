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
* Realised gains are booked on average cost: every unit of a slot carries the same basis.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from rebal.core import kernels
from rebal.core.bands import Edges
from rebal.core.kernels import kernel
from rebal.core.policies import Policy
from rebal.core.types import BoolArray, FloatArray, IntArray, dense

#: A trade smaller than this fraction of the portfolio is float noise, not a trade.
NOISE = 1e-9
#: Most variants simulated per call of the compiled loop (progress is reported between calls;
#: calls run on every core at once, the loop releasing the GIL).
BATCH = 128
#: Runs smaller than this (rows x cells per row) stay in the calling thread.
PARALLEL_CELLS = 1 << 20
#: No policy: the variant never trades by itself (flows go pro rata).
NO_POLICY = -1


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


@dataclass(frozen=True, slots=True)
class SimResult:
    """What a simulation records, per variant (rows) and observation (columns)."""

    value: FloatArray  # (V, T) portfolio value after the trades, costs and flows of each date
    flow_times: IntArray  # (F,) observations with a cash flow
    flow_done: FloatArray  # (V, F) the flow actually made (a withdrawal is capped at the value)
    events: IntArray  # (V,) trades made by the policy
    turnover: FloatArray  # (V,) sum over trades of (sum|trade| - |flow|) / 2 / value before
    costs: FloatArray  # (V,) trading costs paid
    realised: FloatArray  # (V,) net realised gains of all sales, on average cost basis
    realised_by_year: FloatArray  # (V, Y) the same by calendar year of the trade date
    years: IntArray  # (Y,) the calendar years of the history, in order
    drift_sum: FloatArray  # (V,) sum over observations 1..T-1 of max_k |weight - target|
    drift_max: FloatArray  # (V,) max over observations of max_k |weight - target|
    weight_sum: FloatArray  # (V, K) sum over observations 1..T-1 of the weights
    weights: FloatArray | None  # (V, T, K) weights before trading, when recorded
    traded: BoolArray  # (V, T) observations at which each variant traded by its policy

    def event_dates(self, row: int) -> IntArray:
        """Observations at which variant ``row`` traded by its policy, in order."""
        return np.flatnonzero(self.traded[row])


@kernel
def _settle(
    held: FloatArray,
    desired: FloatArray,
    flow: float,
    price: FloatArray,
    bps: float,
    fixed: float,
    units: FloatArray,
    basis: FloatArray,
) -> tuple[float, float, float, float]:
    """Move ``held`` to ``desired`` less costs: sets ``units`` and the average-cost ``basis``;
    returns the value after, the cost paid, the turnover (one-way, excluding the flow, as a
    fraction of the value before) and the gain realised."""
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
    gain = 0.0
    after = 0.0
    for j in range(k):
        final = desired[j] * scale
        after += final
        if final < held[j]:
            fraction = (held[j] - final) / held[j]
            gain += held[j] - final - basis[j] * fraction
            basis[j] *= 1.0 - fraction
        else:
            basis[j] += final - held[j]
        units[j] = final / price[j]
    return after, cost, churn, gain


@kernel
def _walk(
    prices: FloatArray,
    target: FloatArray,
    band_low: FloatArray,
    band_high: FloatArray,
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
    record: bool,
    out: tuple[FloatArray, ...],
    traded: BoolArray,
    weights: FloatArray,
) -> None:
    """Simulate every variant (row) of the arrays; results go into ``out``, ``traded`` and
    (when ``record``) ``weights``, as described by :class:`SimResult`."""
    value, flow_done, events, turnover, costs, realised, by_year, drift_sum, drift_max, wsum = out
    n_obs, k = prices.shape
    for v in range(target.shape[0]):
        code = codes[v]
        goal = target[v]
        units = initial * goal / prices[0]
        basis = initial * goal
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
        low, high, rail, wide_lo, wide_hi = (
            band_low[v], band_high[v], rail_high[v], wide_low[v], wide_high[v]
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
                kernels.destination(code, held, frozen, flow, goal, rail, wide, desired)
                events[v] += 1
                traded[v, t] = True
                next_review = t + cooldown[v]
            elif flow != 0:  # pro rata to holdings
                for j in range(k):
                    desired[j] = held[j] * (total + flow) / total if total > 0 else (
                        max(flow, 0.0) * goal[j]
                    )
            else:
                continue
            after, cost, churn, gain = _settle(
                held, desired, flow, prices[t], bps, fixed, units, basis
            )
            value[v, t] = after
            costs[v] += cost
            turnover[v] += churn
            realised[v] += gain
            by_year[v, year_slot[t]] += gain
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
        return rows.stop - rows.start

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
    drift_sum, drift_max, weight_sum = np.zeros(n), np.zeros(n), np.zeros((n, k))
    traded = np.zeros((n, n_obs), dtype=bool)
    weights = np.zeros((n, n_obs, k) if record_weights else (1, 1, k))
    codes = np.array([NO_POLICY if p is None else p.code for p in plan.policies])[plan.policy_idx]
    edges = plan.edges
    shape = plan.target.shape
    prices, flows = dense(plan.prices), dense(plan.flows.astype(np.float64))
    target = dense(plan.target)
    band_low, band_high = dense(edges.band_low, shape), dense(edges.band_high, shape)
    rail_high = dense(edges.rail_high, shape)
    wide_low, wide_high = dense(edges.wide_low, shape), dense(edges.wide_high, shape)
    def run(rows: slice) -> None:
        _walk(
            prices,
            target[rows],
            band_low[rows],
            band_high[rows],
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
            record_weights,
            (
                value[rows],
                flow_done[rows],
                events[rows],
                turnover[rows],
                costs[rows],
                realised[rows],
                by_year[rows],
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
        years=years,
        drift_sum=drift_sum,
        drift_max=drift_max,
        weight_sum=weight_sum,
        weights=weights if record_weights else None,
        traded=traded,
    )
