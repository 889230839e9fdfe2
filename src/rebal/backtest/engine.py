"""The vectorised simulator: V policy variants over one price history, as (V, K) arrays.

Every row is one variant (a policy, its bands and its review schedule) holding K assets. The
core's own objects decide: :func:`rebal.core.drift.measure_drift` measures drift and band
breaches, a policy's ``wants_trade`` says whether it trades and ``desired_values`` where to.
The lab adds only what a backtest needs around them: the review schedule, cash flows,
trading costs, and bookkeeping of values, drift, events and turnover.

Speed comes from not visiting quiet days one at a time. Between two trades a row's units
are constant, so its drift over a whole window of observations is one call of the core on
the stacked ``(observations, K)`` rows. Each round scans, for every active variant, a
window starting at its own position; the first observation where the policy wants to trade
(on a review date) becomes a trade, and the variant resumes the next round from the
observation after it. Windows double while nothing happens and shrink after a trade, so a
quiet 20-year daily history costs a few dozen core calls, and a sweep of a thousand variants
costs about as many rounds as its busiest variant has trades, each on all variants at once.
Within a window only the candidates are put to the core: for the policies that trade on a band
breach, observations where a weight comes within ``NEAR`` of a band edge; for the others, every
review date. Cash-flow dates are visited by every variant together, one observation at a time.

Conventions (documented in ``docs/backtest.md``):

* Observation 0 buys the targets at their weights, without costs; it is not an event.
* Weights and drift are recorded before any trade of the observation.
* Costs are ``bps`` of the traded value plus ``fixed`` per slot traded; they are paid out of
  the portfolio by scaling the post-trade values down (weights stay where the policy put them).
* A flow at an observation goes to the policy when the variant trades then (as spendable
  cash); otherwise a cash-flow policy places it (most underweight first, most overweight
  first for withdrawals) and every other policy buys or sells pro rata to current holdings.
  A withdrawal larger than the portfolio empties it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from rebal.core.bands import Edges
from rebal.core.drift import Drift, measure_drift
from rebal.core.policies import Policy, PolicyInput
from rebal.core.types import BoolArray, FloatArray, IntArray

#: Largest window (observations) a variant scans in one round.
MAX_WINDOW = 4096
#: First window of every variant.
FIRST_WINDOW = 256
#: A quiet window grows by this factor; after a trade the window is this many times the
#: stretch that led to it.
GROWTH = 4
#: Most stacked rows (variants x observations) measured in one round, to bound memory.
ROUND_BUDGET = 1 << 14
#: Core policies that trade only when a weight is outside its band (``Drift.any_breach``); the
#: scan asks the core only about observations within ``NEAR`` of a band edge for these.
#: ``tests/backtest/test_backtest_engine.py`` checks that their ``wants_trade`` is ``any_breach``.
BAND_TRIGGERED = frozenset({"bands", "rails", "tiered"})
#: Core policies that trade only on a cash flow, never on review.
FLOW_ONLY = frozenset({"cash-flow"})
#: How close (in weight) to a band edge an observation must come to be measured by the core;
#: wider than the core's own edge slack, so no breach is missed.
NEAR = 1e-9
_SILENT, _BANDED, _ALWAYS = 0, 1, 2
#: A trade smaller than this fraction of the portfolio is float noise, not a trade.
NOISE = 1e-9


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
    drift_sum: FloatArray  # (V,) sum over observations 1..T-1 of max_k |weight - target|
    drift_max: FloatArray  # (V,) max over observations of max_k |weight - target|
    weight_sum: FloatArray  # (V, K) sum over observations 1..T-1 of the weights
    weights: FloatArray | None  # (V, T, K) weights before trading, when recorded
    event_rows: IntArray  # (E,) variant of every policy trade, in the order they were made
    event_times: IntArray  # (E,) observation of every policy trade

    def event_dates(self, row: int) -> IntArray:
        """Observations at which variant ``row`` traded by its policy, in order."""
        times: IntArray = np.sort(self.event_times[self.event_rows == row])
        return times


def _rowsum(x: FloatArray) -> FloatArray:
    # A matrix-vector product: several times faster than ``sum(axis=1)`` over a few columns.
    result: FloatArray = x @ np.ones(x.shape[1])
    return result


def _rowmax(x: FloatArray) -> FloatArray:
    # Column by column: ``max(axis=1)`` over a few columns is slow in numpy.
    result = x[:, 0].copy()
    for k in range(1, x.shape[1]):
        np.maximum(result, x[:, k], out=result)
    return result


def _rowany(x: BoolArray) -> BoolArray:
    result = x[:, 0].copy()
    for k in range(1, x.shape[1]):
        np.logical_or(result, x[:, k], out=result)
    return result


def _trigger_kind(policy: Policy | None) -> int:
    if policy is None or policy.name in FLOW_ONLY:
        return _SILENT
    return _BANDED if policy.name in BAND_TRIGGERED else _ALWAYS


def _take_drift(drift: Drift, idx: IntArray) -> Drift:
    """The rows ``idx`` of a measured drift (every field is per account, edges included)."""
    parts: dict[str, Any] = {}
    for f in fields(drift):
        value = getattr(drift, f.name)
        parts[f.name] = _take_edges(value, idx) if isinstance(value, Edges) else value[idx]
    return Drift(**parts)


def _take_edges(edges: Edges, rows: IntArray) -> Edges:
    return Edges(**{f.name: getattr(edges, f.name)[rows] for f in fields(edges)})


class _Simulation:
    """The mutable state of one run; :func:`simulate` is its only user."""

    def __init__(self, plan: Plan, record_weights: bool) -> None:
        self.plan = plan
        prices = plan.prices
        self.T, self.K = prices.shape
        self.V = plan.target.shape[0]
        self.used: BoolArray = np.ones((self.V, self.K), dtype=bool)
        self.units: FloatArray = plan.initial * plan.target / prices[0]
        self.value: FloatArray = np.zeros((self.V, self.T))
        self.value[:, 0] = plan.initial
        self.events: IntArray = np.zeros(self.V, dtype=np.int64)
        self.turnover: FloatArray = np.zeros(self.V)
        self.costs: FloatArray = np.zeros(self.V)
        self.realised: FloatArray = np.zeros(self.V)
        self.basis: FloatArray = plan.initial * plan.target  # average cost basis per slot
        self.drift_sum: FloatArray = np.zeros(self.V)
        self.drift_max: FloatArray = np.zeros(self.V)
        self.weight_sum: FloatArray = np.zeros((self.V, self.K))
        self.weights: FloatArray | None = None
        if record_weights:
            self.weights = np.zeros((self.V, self.T, self.K))
            self.weights[:, 0] = plan.target
        self.log: list[tuple[IntArray, IntArray]] = []
        self.next_review: IntArray = np.zeros(self.V, dtype=np.int64)
        self.pos: IntArray = np.ones(self.V, dtype=np.int64)
        self.window: IntArray = np.full(self.V, FIRST_WINDOW, dtype=np.int64)
        self.flow_times: IntArray = np.flatnonzero(plan.flows[1:]) + 1
        self.flow_done: FloatArray = np.zeros((self.V, len(self.flow_times)))
        self.trigger = np.array([_trigger_kind(p) for p in plan.policies])
        self.has_policy = np.array([p is not None for p in plan.policies])
        self.low_near: FloatArray = plan.edges.band_low + NEAR
        self.high_near: FloatArray = plan.edges.band_high - NEAR

    # -- measuring -------------------------------------------------------------------------

    def _measure(self, rows: IntArray, held: FloatArray) -> Drift:
        return measure_drift(
            held,
            np.zeros(len(rows)),
            self.plan.target[rows],
            _take_edges(self.plan.edges, rows),
            self.used[rows],
        )

    def _candidates(self, rows: IntArray, times: IntArray, weight: FloatArray) -> BoolArray:
        """Stacked rows where a policy might want to trade: a superset of :meth:`_wants`.

        Band-triggered policies can only trade where a weight is within ``NEAR`` of a band
        edge or beyond it; every other reviewing policy is a candidate on each review date.
        """
        plan = self.plan
        kind = self.trigger[plan.policy_idx[rows]]
        cand: BoolArray = self._reviewed(rows, times) & (kind != _SILENT)
        banded = cand & (kind == _BANDED)
        if banded.any():
            low = np.take(self.low_near, rows, axis=0)
            high = np.take(self.high_near, rows, axis=0)
            cand &= (kind != _BANDED) | _rowany((weight < low) | (weight > high))
        return cand

    def _wants(self, rows: IntArray, times: IntArray, drift: Drift) -> BoolArray:
        """Per stacked row: a review date of a reviewing policy that wants to trade."""
        plan = self.plan
        wants = np.zeros(len(rows), dtype=bool)
        pidx = plan.policy_idx[rows]
        for gi, policy in enumerate(plan.policies):
            if policy is None or self.trigger[gi] == _SILENT:
                continue
            in_group = pidx == gi
            if in_group.any():
                wants |= in_group & policy.wants_trade(drift)
        wants &= self._reviewed(rows, times)
        return wants

    def _reviewed(self, rows: IntArray, times: IntArray) -> BoolArray:
        """Per stacked row: a review date of the variant, outside a cooldown."""
        plan = self.plan
        result: BoolArray = plan.reviews[plan.review_idx[rows], times] & (
            times >= self.next_review[rows]
        )
        return result

    def _record(
        self, rows: IntArray, times: IntArray, weight: FloatArray, total: FloatArray
    ) -> None:
        """Book drift, weights and pre-trade value of stacked rows (sorted by variant)."""
        # An emptied portfolio has no weights; it counts as on target.
        alive = total > 0
        absdrift = _rowmax(np.abs(weight - np.take(self.plan.target, rows, axis=0))) * alive
        bounds = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        who = rows[bounds]
        self.drift_sum[who] += np.add.reduceat(absdrift, bounds)
        self.drift_max[who] = np.maximum(self.drift_max[who], np.maximum.reduceat(absdrift, bounds))
        self.weight_sum[who] += np.add.reduceat(weight, bounds, axis=0)
        self.value[rows, times] = total
        if self.weights is not None:
            self.weights[rows, times] = weight

    # -- trading ---------------------------------------------------------------------------

    def _trade(
        self,
        rows: IntArray,
        times: IntArray,
        held: FloatArray,
        flow: FloatArray,
        drift: Drift | None,
    ) -> None:
        """Trade ``rows`` at ``times``: by their policy given their ``drift``, else pro rata."""
        plan = self.plan
        desired = np.empty_like(held)
        total = held.sum(axis=1)
        if drift is not None:
            pidx = plan.policy_idx[rows]
            for gi in np.unique(pidx):
                policy = plan.policies[gi]
                assert policy is not None
                sub = np.flatnonzero(pidx == gi)
                one = drift if len(sub) == len(rows) else _take_drift(drift, sub)
                frozen = np.zeros((len(sub), self.K), dtype=bool)
                inp = PolicyInput(drift=one, frozen=frozen, spendable=flow[sub])
                desired[sub] = policy.desired_values(inp)
            self.events[rows] += 1
            self.log.append((rows, times))
            self.next_review[rows] = times + plan.cooldown[rows]
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = np.where(total > 0, (total + flow) / total, 0.0)
            desired = held * scale[:, None]
            empty = total <= 0
            desired[empty] = np.maximum(flow[empty], 0.0)[:, None] * plan.target[rows[empty]]
        trade = np.abs(desired - held)
        traded = trade.sum(axis=1)
        size = np.maximum(total, np.abs(flow))
        count = (trade > NOISE * size[:, None]).sum(axis=1)
        post = desired.sum(axis=1)
        cost = np.minimum(plan.costs.bps * 1e-4 * traded + plan.costs.fixed * count, post)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(post > 0, (post - cost) / post, 0.0)
            churn = np.where(total > 0, np.maximum(traded - np.abs(flow), 0.0) / 2 / total, 0.0)
        final = desired * scale[:, None]
        self.units[rows] = final / plan.prices[times]
        self.value[rows, times] = final.sum(axis=1)
        self.costs[rows] += cost
        self._book_gains(rows, held, final)
        self.turnover[rows] += churn

    def _book_gains(self, rows: IntArray, held: FloatArray, final: FloatArray) -> None:
        """Realise gains on what was sold, at the average cost of the slot; add what was bought.

        Average cost (every unit of a slot carries the same basis) is what a vectorised lab
        can track; lot-level relief (FIFO, HIFO, minimum tax) lives in :mod:`rebal.tax`.
        """
        basis = self.basis[rows]
        sold = np.maximum(held - final, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            fraction = np.where(held > 0, sold / held, 0.0)
        self.realised[rows] += _rowsum(sold - basis * fraction)
        self.basis[rows] = basis * (1.0 - fraction) + np.maximum(final - held, 0.0)

    # -- the two kinds of step -------------------------------------------------------------

    def scan_round(self, limit: int) -> None:
        """Advance every variant short of ``limit`` through one window or to its next trade."""
        act = np.flatnonzero(self.pos < limit)
        lens = np.minimum(self.window[act], limit - self.pos[act])
        if lens.sum() > ROUND_BUDGET:
            lens = np.minimum(lens, max(1, ROUND_BUDGET // len(act)))
        starts = np.cumsum(lens) - lens
        seg = np.repeat(np.arange(len(act)), lens)
        off = np.arange(int(lens.sum())) - starts[seg]
        rows = act[seg]
        times = self.pos[rows] + off
        held = np.take(self.units, rows, axis=0) * np.take(self.plan.prices, times, axis=0)
        total = _rowsum(held)
        weight = held / np.where(total > 0, total, np.inf)[:, None]
        first, trade_drift = self._first_trades(seg, off, rows, times, held, weight, len(act))
        last = np.where(first >= 0, first, lens - 1)
        keep = np.flatnonzero(off <= last[seg])
        self._record(rows[keep], times[keep], np.take(weight, keep, axis=0), total[keep])
        traded = np.flatnonzero(first >= 0)
        if trade_drift is not None and traded.size:
            at_trade = starts[traded] + first[traded]
            t_rows, t_times = act[traded], times[at_trade]
            self._trade(t_rows, t_times, held[at_trade], np.zeros(len(traded)), trade_drift)
            self.pos[t_rows] = t_times + 1
            self.window[t_rows] = np.clip(GROWTH * (first[traded] + 1), 1, MAX_WINDOW)
        quiet = act[first < 0]
        self.pos[quiet] += lens[first < 0]
        self.window[quiet] = np.minimum(GROWTH * self.window[quiet], MAX_WINDOW)

    def _first_trades(
        self,
        seg: IntArray,
        off: IntArray,
        rows: IntArray,
        times: IntArray,
        held: FloatArray,
        weight: FloatArray,
        segments: int,
    ) -> tuple[IntArray, Drift | None]:
        """Per segment, the offset of its first trade (-1 if none) and the drift of those rows.

        Only the first candidate of each segment is put to the core; a segment whose first
        candidate the core turns down (a weight within ``NEAR`` of an edge but inside it) puts
        its next candidate, until every segment has a trade or no candidate left.
        """
        first = np.full(segments, -1, dtype=np.int64)
        pending = np.flatnonzero(self._candidates(rows, times, weight))
        heads_ok: list[IntArray] = []
        drifts: list[Drift] = []
        while pending.size:
            s = seg[pending]
            is_head = np.r_[True, s[1:] != s[:-1]]
            heads = pending[is_head]
            drift = self._measure(rows[heads], held[heads])
            ok = self._wants(rows[heads], times[heads], drift)
            first[seg[heads[ok]]] = off[heads[ok]]
            heads_ok.append(heads[ok])
            drifts.append(drift if ok.all() else _take_drift(drift, np.flatnonzero(ok)))
            rejected = np.zeros(segments, dtype=bool)
            rejected[seg[heads[~ok]]] = True
            pending = pending[~is_head & rejected[s]]
        if len(drifts) <= 1:
            return first, drifts[0] if drifts else None
        # Rare: trades found in several passes; measure them again, in segment order.
        at = np.sort(np.concatenate(heads_ok))
        return first, self._measure(rows[at], held[at])

    def flow_step(self, t: int, slot: int) -> None:
        """Observation ``t`` with a cash flow, for every variant together."""
        rows = np.arange(self.V)
        times = np.full(self.V, t)
        held = self.units * self.plan.prices[t]
        drift = self._measure(rows, held)
        self._record(rows, times, np.nan_to_num(drift.weight), drift.total)
        flow = np.maximum(np.full(self.V, self.plan.flows[t]), -drift.total)
        self.flow_done[:, slot] = flow
        pidx = self.plan.policy_idx
        places_flow = (self.trigger[pidx] == _SILENT) & self.has_policy[pidx] & (flow != 0)
        by_policy = self._wants(rows, times, drift) | places_flow
        sel = np.flatnonzero(by_policy)
        if sel.size:
            self._trade(sel, times[sel], held[sel], flow[sel], _take_drift(drift, sel))
        sel = np.flatnonzero(~by_policy)
        if sel.size:
            self._trade(sel, times[sel], held[sel], flow[sel], None)
        self.pos[:] = t + 1

    def result(self) -> SimResult:
        return SimResult(
            value=self.value,
            flow_times=self.flow_times,
            flow_done=self.flow_done,
            events=self.events,
            turnover=self.turnover,
            costs=self.costs,
            realised=self.realised,
            drift_sum=self.drift_sum,
            drift_max=self.drift_max,
            weight_sum=self.weight_sum,
            weights=self.weights,
            event_rows=np.concatenate([r for r, _ in self.log] or [np.zeros(0, np.int64)]),
            event_times=np.concatenate([t for _, t in self.log] or [np.zeros(0, np.int64)]),
        )


def simulate(
    plan: Plan,
    *,
    record_weights: bool = False,
    on_progress: Callable[[float], None] | None = None,
) -> SimResult:
    """Run every variant of ``plan`` over the whole history and return what it recorded.

    ``record_weights`` keeps the (V, T, K) weight paths (for plots; memory grows with V).
    ``on_progress`` is called with the fraction of variant-observations done.
    """
    sim = _Simulation(plan, record_weights)
    limits = [*sim.flow_times.tolist(), sim.T]
    for slot, limit in enumerate(limits):
        while (sim.pos < limit).any():
            sim.scan_round(limit)
            if on_progress is not None:
                on_progress(float(sim.pos.sum()) / (sim.V * sim.T))
        if limit < sim.T:
            sim.flow_step(limit, slot)
    if on_progress is not None:
        on_progress(1.0)
    return sim.result()
