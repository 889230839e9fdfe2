"""The vectorised simulator: V policy variants over one price history, as (V, K) arrays.

Every row is one variant (a policy, its bands and its review schedule) holding K assets. The
core's own objects decide: :func:`rebal.core.drift.measure_drift` measures drift and band
breaches, a policy's ``wants_trade`` says whether it trades and ``desired_values`` where to.
The lab adds only what a backtest needs around them: the review schedule, cash flows,
trading costs, and bookkeeping of values, drift, events and turnover.

Speed comes from not visiting quiet days one at a time and from asking the core in batches.
Between two trades a row's units are constant, so a window of observations is one matrix
product: ``prices @ M`` with a per-variant matrix ``M`` has a positive column exactly where a
weight comes within ``NEAR`` of a band edge (for the policies that trade on a band breach) or
where there is anything to weigh (for those that trade whenever asked), on review dates only.
These *candidates* are a superset of the trades; only the core decides which are trades.

Each round (between two cash-flow dates) has three steps:

1. *Speculate.* Every variant scans forward from where it stands. At a candidate it assumes a
   trade that leaves the weights its last trade left (the target, for ``Full`` and ``Bands``)
   and scans on from there, up to ``allow`` guessed trades. A variant whose guess once failed
   (``Rails``, ``Tiered``: their destination depends on the drift) is ``exact`` instead: the
   core is asked at each of its candidates as the scan meets it, together with every other
   variant meeting one in the same step, and the scan goes on from the core's destination.
2. *Verify.* The core measures every guessed trade, says whether it wants it and where to, all
   in one batch. A variant keeps its trades up to the first the core turned down (it resumes
   there, past that candidate) or whose destination differs from the guess by more than
   ``GUESS_TOL`` (kept, and the variant turns exact).
3. *Replay and record.* The kept trades are booked: a guess that held means the holdings
   before each trade are the guessed ones up to a factor, and every core policy is
   homogeneous in the holdings when no cash flows, so the core's destination scales by the
   same factor; costs, turnover and average-cost gains follow in closed form over each chain.
   Values, drift and weights of the stretches between trades are recorded in a few large
   passes at the end.

So a single threshold backtest over 20 years of daily prices asks the core once for all of its
trades, and a sweep of a thousand variants takes a few rounds, its rails variants asking the
core once per step of the scan, all together. Cash-flow dates are visited by every variant
together, one observation at a time.

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
from dataclasses import dataclass

import numpy as np

from rebal.core.bands import Edges
from rebal.core.drift import Drift, measure_drift
from rebal.core.policies import Policy, PolicyInput
from rebal.core.rows import take_rows
from rebal.core.types import BoolArray, FloatArray, IntArray

#: Largest window (observations) a variant scans in one step.
MAX_WINDOW = 4096
#: First window of every variant.
FIRST_WINDOW = 256
#: A quiet window grows by this factor; after a trade the window is this many times the
#: stretch that led to it (rounded up to a power of two).
GROWTH = 2
AFTER_TRADE = 1
#: Windows alike up to this many bits (``window >> CLASS_SHIFT``) scan as one block.
CLASS_SHIFT = 8
#: Most stacked rows (variants x observations) scanned in one block, to bound memory.
ROUND_BUDGET = 1 << 16
#: Observations (variants x observations) recorded in one pass: small enough that the working
#: arrays stay in cache (and below the allocator's threshold for fresh pages).
RECORD_CHUNK = 1 << 11
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
#: Trades a variant may guess ahead in its first round; the allowance grows by ``CHAIN_GROWTH``
#: after a round whose guesses all held, up to ``MAX_CHAIN``. After a guess fails the variant
#: is asked about at every candidate instead (``exact``).
FIRST_CHAIN = 64
CHAIN_GROWTH = 4
MAX_CHAIN = 1 << 16
#: A trade left the weights guessed when they agree to this (weight units); far inside
#: ``NEAR``, so a guessed stretch finds the same candidates as the true one.
GUESS_TOL = 1e-13


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


def _window(size: IntArray) -> IntArray:
    """``size`` rounded up to a power of two within ``[1, MAX_WINDOW]``: few distinct windows."""
    exponent = np.ceil(np.log2(np.maximum(size, 1))).astype(np.int64)
    result: IntArray = np.minimum(np.left_shift(1, exponent), MAX_WINDOW)
    return result


def _score_matrices(kind: IntArray, low: FloatArray, high: FloatArray) -> FloatArray:
    """Per variant, a (K, C) matrix ``M`` such that ``held @ M`` has a positive column where the
    variant might want to trade: columns ``k`` hold ``held_k - high_k * total`` and columns
    ``K + k`` ``low_k * total - held_k`` for band-triggered policies (a weight above ``high`` or
    below ``low``); ``total`` for policies that trade whenever asked. Zero columns pad ``C`` to a
    multiple of eight."""
    n, k = low.shape
    eye = np.eye(k)
    banded = np.concatenate([eye - high[:, None, :], low[:, None, :] - eye], axis=2)
    result = np.zeros((n, k, -(-2 * k // 8) * 8))  # padded to whole words of eight columns
    result[:, :, : 2 * k] = np.where(
        (kind == _BANDED)[:, None, None], banded, (kind == _ALWAYS)[:, None, None] * 1.0
    )
    return result


#: The window of every size up to ``MAX_WINDOW``, looked up rather than computed per step.
_WINDOWS = _window(np.arange(MAX_WINDOW + 1))


def _run_starts(keys: IntArray) -> BoolArray:
    """True where a run of equal consecutive ``keys`` starts."""
    out = np.empty(len(keys), dtype=bool)
    out[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=out[1:])
    return out


def _run_ends(keys: IntArray) -> BoolArray:
    """True where a run of equal consecutive ``keys`` ends."""
    out = np.empty(len(keys), dtype=bool)
    out[-1:] = True
    np.not_equal(keys[1:], keys[:-1], out=out[:-1])
    return out


def _recurrence(
    a: FloatArray, b: FloatArray, init: FloatArray, lead: BoolArray
) -> tuple[FloatArray, FloatArray]:
    """``y`` before and after each step of ``y <- a * y + b``, over runs of consecutive steps
    that start from ``init`` (one row per run) at each ``lead`` step.

    With every ``a`` positive, in closed form, each run on a row of its own (so that runs of
    very different sizes never mix in one sum): ``y_j = A_j (init + sum_{i<=j} b_i / A_i)`` with
    ``A`` the running product of ``a``; otherwise step by step, the first steps of every run
    together, then the second steps, ...
    """
    heads = np.flatnonzero(lead)
    lens = np.diff(np.append(heads, len(a)))
    run = np.repeat(np.arange(len(heads)), lens)
    start = init[run]
    if len(heads) == len(a):  # every run a single step
        after: FloatArray = a * start + b
    elif (a > 0).all():
        step = np.arange(len(a)) - np.repeat(heads, lens)
        shape = (len(heads), int(lens.max(initial=0)), *a.shape[1:])
        grown = np.ones(shape)
        grown[run, step] = a
        np.cumprod(grown, axis=1, out=grown)
        added = np.zeros(shape)
        added[run, step] = b
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            added /= grown
            np.cumsum(added, axis=1, out=added)
            after = (grown * (init[:, None] + added))[run, step]
    if len(heads) < len(a) and not ((a > 0).all() and np.isfinite(after).all()):
        # A factor of 0 (a slot sold out), or a product of factors too small for a float.
        after = np.empty_like(a)
        for j in range(int(lens.max(initial=0))):
            e = heads[lens > j] + j
            after[e] = a[e] * (start[e] if j == 0 else after[e - 1]) + b[e]
    lead_rows = lead.reshape(-1, *([1] * (a.ndim - 1)))
    before: FloatArray = np.where(lead_rows, start, np.roll(after, 1, axis=0))
    return before, after


def _trigger_kind(policy: Policy | None) -> int:
    if policy is None or policy.name in FLOW_ONLY:
        return _SILENT
    return _BANDED if policy.name in BAND_TRIGGERED else _ALWAYS


@dataclass(frozen=True, slots=True)
class _Chain:
    """The trades one round found: ``index`` into the round's variants, ``times``, ``held``
    values before each (in the order found); per variant, ``count`` and the ``end`` reached."""

    index: IntArray
    times: IntArray
    held: FloatArray
    desired: FloatArray  # the core's destination where already asked (exact chains), else NaN
    count: IntArray
    end: IntArray


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
        self.years: IntArray = np.unique(plan.year)
        self.year_slot: IntArray = np.searchsorted(self.years, plan.year)  # (T,) into years
        self.realised_by_year: FloatArray = np.zeros((self.V, len(self.years)))
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
        # The speculation: weights each variant is expected to hold after its next trade (those
        # after its last one), how many trades a round may guess ahead, and a candidate the
        # core turned down (its observation, skipped by the next scan; -1 for none).
        self.guess: FloatArray = plan.target.copy()
        self.allow: IntArray = np.full(self.V, FIRST_CHAIN, dtype=np.int64)
        self.exact: BoolArray = np.zeros(self.V, dtype=bool)
        self.skip: IntArray = np.full(self.V, -1, dtype=np.int64)
        # Stretches at constant units still to record (variants, start, stop, units), and the
        # values after the trades that end them (variants, observations, values).
        self.stretches: list[tuple[IntArray, IntArray, IntArray, FloatArray]] = []
        self.after_trades: list[tuple[IntArray, IntArray, FloatArray]] = []
        self.flow_times: IntArray = np.flatnonzero(plan.flows[1:]) + 1
        self.flow_done: FloatArray = np.zeros((self.V, len(self.flow_times)))
        kinds = np.array([_trigger_kind(p) for p in plan.policies])
        self.kind: IntArray = kinds[plan.policy_idx]
        self.has_policy = np.array([p is not None for p in plan.policies])
        self.one_target = bool((plan.target == plan.target[0]).all())
        # Schedules that review every observation (daily ones).
        self.every_obs: BoolArray = plan.reviews[:, 1:].sum(axis=1) == self.T - 1
        self.score = _score_matrices(
            self.kind, plan.edges.band_low + NEAR, plan.edges.band_high - NEAR
        )
        self.ones: FloatArray = np.ones(self.K)  # row sums as matrix products: much faster

    # -- asking the core -------------------------------------------------------------------

    def _measure(self, rows: IntArray, held: FloatArray) -> Drift:
        return measure_drift(
            held,
            np.zeros(len(rows)),
            self.plan.target[rows],
            take_rows(self.plan.edges, rows),
            self.used[rows],
        )

    def _policy_wants(self, rows: IntArray, drift: Drift) -> BoolArray:
        """Per row: the variant's policy wants to trade on this drift (reviews aside)."""
        plan = self.plan
        wants = np.zeros(len(rows), dtype=bool)
        pidx = plan.policy_idx[rows]
        for gi, policy in enumerate(plan.policies):
            if policy is None or _trigger_kind(policy) == _SILENT:
                continue
            in_group = pidx == gi
            if in_group.any():
                wants |= in_group & policy.wants_trade(drift)
        return wants

    def _desired(
        self, rows: IntArray, drift: Drift, flow: FloatArray, sel: IntArray
    ) -> FloatArray:
        """The values the policies of rows ``sel`` want after trading, given their ``drift``."""
        plan = self.plan
        desired = np.zeros((len(sel), self.K))
        pidx = plan.policy_idx[rows[sel]]
        for gi in np.unique(pidx):
            policy = plan.policies[gi]
            assert policy is not None
            sub = np.flatnonzero(pidx == gi)
            at = sel[sub]
            one = drift if len(at) == len(rows) else take_rows(drift, at)
            frozen = np.zeros((len(at), self.K), dtype=bool)
            desired[sub] = policy.desired_values(PolicyInput(one, frozen, flow[at]))
        return desired

    def _reviewed(self, rows: IntArray, times: IntArray) -> BoolArray:
        """Per row: a review date of the variant, outside a cooldown."""
        plan = self.plan
        result: BoolArray = plan.reviews[plan.review_idx[rows], times] & (
            times >= self.next_review[rows]
        )
        return result

    # -- recording and trading -------------------------------------------------------------

    def _record(
        self,
        who: IntArray,
        lens: IntArray,
        times: IntArray,
        weight: FloatArray,
        total: FloatArray,
    ) -> None:
        """Book drift, weights and pre-trade value of stacked rows: ``lens`` rows of each
        variant ``who`` in turn (a variant once), at observations ``times``."""
        bounds = np.cumsum(lens) - lens
        rows = np.repeat(who, lens)
        target = self.plan.target[0] if self.one_target else self.plan.target[rows]
        absdrift = _rowmax(np.abs(weight - target))
        # An emptied portfolio has no weights; it counts as on target.
        absdrift[total <= 0] = 0.0
        self.drift_sum[who] += np.add.reduceat(absdrift, bounds)
        self.drift_max[who] = np.maximum(self.drift_max[who], np.maximum.reduceat(absdrift, bounds))
        self.weight_sum[who] += np.add.reduceat(weight, bounds, axis=0)
        self.value[rows, times] = total
        if self.weights is not None:
            self.weights[rows, times] = weight

    def _settle(
        self,
        rows: IntArray,
        times: IntArray,
        held: FloatArray,
        desired: FloatArray,
        flow: FloatArray,
    ) -> FloatArray:
        """Move ``rows`` from ``held`` to ``desired`` at ``times``, less costs; the values after.

        Books costs, turnover and realised gains and sets the units; the caller records the
        value (after any recording of the pre-trade state of the same observations).
        """
        plan = self.plan
        total = _rowsum(held)
        trade = np.abs(desired - held)
        traded = _rowsum(trade)
        size = np.maximum(total, np.abs(flow))
        count = (trade > NOISE * size[:, None]) @ self.ones
        post = _rowsum(desired)
        cost = np.minimum(plan.costs.bps * 1e-4 * traded + plan.costs.fixed * count, post)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(post > 0, (post - cost) / post, 0.0)
            churn = np.where(total > 0, np.maximum(traded - np.abs(flow), 0.0) / 2 / total, 0.0)
        final = desired * scale[:, None]
        self.units[rows] = final / plan.prices[times]
        self.costs[rows] += cost
        self._book_gains(rows, times, held, final)
        self.turnover[rows] += churn
        return final

    def _book_gains(
        self,
        rows: IntArray,
        times: IntArray,
        held: FloatArray,
        final: FloatArray,
        chained: bool = False,
    ) -> None:
        """Realise gains on what was sold, at the average cost of the slot; add what was bought.

        Gains are booked to the variant's total and to the calendar year of the trade ``times``.

        ``chained``: ``rows`` hold several trades of a variant each, together and in time order;
        by default every row is another variant. Average cost (every unit of a slot carries the
        same basis) is what a vectorised lab can track; lot-level relief (FIFO, HIFO, minimum
        tax) lives in :mod:`rebal.tax`.
        """
        n = len(rows)
        if n == 0:
            return
        sold = np.maximum(held - final, 0.0)
        bought = np.maximum(final - held, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            fraction = np.where(held > 0, sold / held, 0.0)
        lead = _run_starts(rows) if chained else np.ones(n, dtype=bool)
        before, after = _recurrence(1.0 - fraction, bought, self.basis[rows[lead]], lead)
        gain = (sold - before * fraction) @ self.ones
        self.realised += np.bincount(rows, gain, self.V)
        np.add.at(self.realised_by_year, (rows, self.year_slot[times]), gain)
        last = _run_ends(rows)
        self.basis[rows[last]] = after[last]

    def _policy_trades(
        self,
        rows: IntArray,
        times: IntArray,
        held: FloatArray,
        desired: FloatArray,
        flow: FloatArray,
    ) -> FloatArray:
        """Trades the policies made: an event each; the values after."""
        final = self._settle(rows, times, held, desired, flow)
        self.events[rows] += 1
        self.log.append((rows, times))
        self.next_review[rows] = times + self.plan.cooldown[rows]
        post = _rowsum(final)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.guess[rows] = np.where(post[:, None] > 0, final / post[:, None], self.guess[rows])
        return final

    # -- scanning between cash flows -------------------------------------------------------

    def scan_round(self, limit: int) -> None:
        """Advance every variant short of ``limit`` through its next stretch of trades.

        Speculate (each variant's next trades, up to ``allow`` of them, assuming each leaves
        the weights its last trade left; exact variants ask the core as they go), ask the core
        about all guessed trades in one batch, keep each variant's trades up to the first the
        guess got wrong, replay those and record.
        """
        act = np.flatnonzero(self.pos < limit)
        self._settle_chain(act, self._speculate(act, limit))

    def _speculate(self, act: IntArray, limit: int) -> _Chain:
        """Scan the variants ``act`` forward to ``limit``; the trades found or guessed."""
        plan = self.plan
        n = len(act)
        cur = self.pos[act].copy()  # the first observation not yet looked at
        units = self.units[act].copy()
        ready = self.next_review[act].copy()  # the first review after the cooldown
        win = self.window[act].copy()
        skip = self.skip[act]
        guess = self.guess[act]
        cooldown = plan.cooldown[act]
        count = np.zeros(n, dtype=np.int64)
        exact = self.exact[act]
        allow = np.where(exact, self.T, self.allow[act])
        found_i: list[IntArray] = []
        found_t: list[IntArray] = []
        found_h: list[FloatArray] = []
        found_d: list[FloatArray] = []
        # Variants that never trade on review have nothing to look for.
        cur[self.kind[act] == _SILENT] = limit
        live = np.flatnonzero(cur < limit)
        if live.size == 1 and not exact[live[0]]:
            self._walk(act, int(live[0]), limit, cur, count, win, (found_i, found_t, found_h))
            found_d.append(np.full((len(found_h), self.K), np.nan))  # one row per trade
            live = live[:0]
        while live.size:
            # Variants with windows of a class scan together, as one (variants, window) block.
            sizes = win[live]
            classes = np.unique(sizes >> CLASS_SHIFT) if live.size > 1 else sizes[:1] >> CLASS_SHIFT
            for cls in classes:
                group = live if len(classes) == 1 else live[(sizes >> CLASS_SHIFT) == cls]
                size = int(win[group].max())
                length = int(min(size, max(1, ROUND_BUDGET // group.size)))
                # Look from the end of the cooldown, past a candidate the core turned down.
                first = np.maximum(cur[group], ready[group])
                first += first == skip[group]
                hit, off = self._scan(act[group], first, length, limit, units[group])
                quiet = group[~hit]
                cur[quiet] = first[~hit] + length
                win[quiet] = np.minimum(GROWTH * win[quiet], MAX_WINDOW)
                if off.size:
                    got = group[hit]
                    times = first[hit] + off
                    held = units[got] * plan.prices[times]
                    desired, trades = self._ask_exact(act[got], exact[got], held)
                    cur[got] = times + 1  # a candidate turned down: look on after it
                    got, times, off = got[trades], times[trades], off[trades]
                    held, desired = held[trades], desired[trades]
                    found_i.append(got)
                    found_t.append(times)
                    found_h.append(held)
                    found_d.append(desired)
                    prices = plan.prices[times]
                    units[got] = np.where(
                        exact[got][:, None],
                        desired / prices,
                        (held @ self.ones)[:, None] * guess[got] / prices,
                    )
                    ready[got] = times + cooldown[got]
                    count[got] += 1
                    win[got] = _WINDOWS[np.minimum(AFTER_TRADE * (off + 1), MAX_WINDOW)]
            live = live[(cur[live] < limit) & (count[live] < allow[live])]
        self.window[act] = win
        empty = np.zeros(0, dtype=np.int64)
        return _Chain(
            index=np.concatenate(found_i or [empty]),
            times=np.concatenate(found_t or [empty]),
            held=np.concatenate(found_h or [np.zeros((0, self.K))]),
            desired=np.concatenate(found_d or [np.zeros((0, self.K))]),
            count=count,
            end=np.minimum(cur, limit),
        )

    def _ask_exact(
        self, rows: IntArray, exact: BoolArray, held: FloatArray
    ) -> tuple[FloatArray, BoolArray]:
        """For candidates of variants ``rows`` holding ``held``: the core's destination where the
        variant is ``exact`` (NaN elsewhere, to be guessed), and which are trades (all but the
        exact candidates the core turns down).

        A variant whose trades leave weights that cannot be guessed (rails, tiered) is asked at
        every candidate as the scan meets it, together with the others that meet one then.
        """
        desired = np.full_like(held, np.nan)
        trades = np.ones(len(rows), dtype=bool)
        sure = np.flatnonzero(exact)
        if sure.size:
            drift = self._measure(rows[sure], held[sure])
            wants = self._policy_wants(rows[sure], drift)
            desired[sure[wants]] = self._desired(
                rows[sure], drift, np.zeros(len(sure)), np.flatnonzero(wants)
            )
            trades[sure[~wants]] = False
        return desired, trades

    def _walk(
        self,
        act: IntArray,
        i: int,
        limit: int,
        cur: IntArray,
        count: IntArray,
        win: IntArray,
        found: tuple[list[IntArray], list[IntArray], list[FloatArray]],
    ) -> None:
        """:meth:`_speculate` for a lone variant ``act[i]``, its state in Python integers.

        A single backtest then pays per trade for little more than the scan itself.
        """
        plan = self.plan
        v = int(act[i])
        units = self.units[v].copy()
        matrix = self.score[v]
        reviews = plan.reviews[plan.review_idx[v]]
        guess = self.guess[v]
        cooldown, skip, allow = int(plan.cooldown[v]), int(self.skip[v]), int(self.allow[v])
        at, ready, size, n = int(cur[i]), int(self.next_review[v]), int(win[i]), 0
        while at < limit and n < allow:
            first = max(at, ready)
            first += first == skip
            stop = min(first + size, limit)
            if first >= stop:
                at = limit
                break
            cand = self._candidates(plan.prices[first:stop], units[:, None] * matrix)
            cand &= reviews[first:stop]
            off = int(cand.argmax())
            if not cand[off]:
                at, size = stop, min(GROWTH * size, MAX_WINDOW)
                continue
            t = first + off
            prices = plan.prices[t]
            held = units * prices
            found[0].append(np.array([i]))
            found[1].append(np.array([t]))
            found[2].append(held[None])
            units = (held @ self.ones) * guess / prices
            ready, n, at = t + cooldown, n + 1, t + 1
            size = int(_WINDOWS[min(AFTER_TRADE * (off + 1), MAX_WINDOW)])
        cur[i], count[i], win[i] = at, n, size

    def _candidates(self, window: FloatArray, matrix: FloatArray) -> BoolArray:
        """Where, among the prices ``window`` (..., L, K), a policy might want to trade a
        portfolio of units folded into ``matrix`` (..., K, C) (see :func:`_score_matrices`)."""
        # Eight columns' signs to a machine word: "any column positive" is "any word nonzero".
        words = (window @ matrix > 0).view(np.uint64)
        found = words[..., 0].copy()
        for w in range(1, words.shape[-1]):
            found |= words[..., w]
        result: BoolArray = found != 0
        return result

    def _scan(
        self, rows: IntArray, first: IntArray, length: int, limit: int, units: FloatArray
    ) -> tuple[BoolArray, IntArray]:
        """Per variant ``rows`` holding ``units``: whether observations ``first`` to ``first +
        length`` (short of ``limit``) hold a candidate, and the offset of each first one.

        A candidate is a review date where a policy might want to trade: for band-triggered
        policies, where a weight comes within ``NEAR`` of a band edge or beyond it; for the
        others, anywhere with something to weigh. The weights are never formed: the score
        ``held @ M`` is positive exactly there (see :func:`_score_matrices`).
        """
        plan = self.plan
        review = plan.review_idx[rows]
        if len(rows) == 1:
            a = int(first[0])
            b = min(a + length, limit)
            window = plan.prices[a:b][None]
            reviewed = plan.reviews[review[0], a:b][None]
        else:
            times = first[:, None] + np.arange(length)
            inside = times < limit
            times = np.minimum(times, limit - 1)
            window = np.take(plan.prices, times, axis=0)
            reviewed = inside
            if not self.every_obs[review].all():
                reviewed = plan.reviews[review[:, None], times] & inside
        if window.shape[1] == 0:
            return np.zeros(len(rows), dtype=bool), np.zeros(0, dtype=np.int64)
        cand = self._candidates(window, units[:, :, None] * self.score[rows]) & reviewed
        off = cand.argmax(axis=1)
        hit = cand[np.arange(len(rows)), off]
        return hit, off[hit]

    def _settle_chain(self, act: IntArray, chain: _Chain) -> None:
        """Ask the core about every guessed trade at once; keep, replay and record the good."""
        n = len(act)
        order = np.lexsort((chain.times, chain.index))  # by variant, then time
        index, times, held = chain.index[order], chain.times[order], chain.held[order]
        desired = chain.desired[order]
        sure = ~np.isnan(desired[:, 0])  # asked already, as the scan met them
        first = np.cumsum(chain.count) - chain.count
        step = np.arange(len(index)) - first[index]  # rank of the trade in its variant's chain
        rows = act[index]
        wants = np.ones(len(rows), dtype=bool)
        moved = np.zeros(len(rows), dtype=bool)
        guessed = np.flatnonzero(~sure)
        if guessed.size:
            at = rows[guessed]
            drift = self._measure(at, held[guessed])
            wants[guessed] = self._policy_wants(at, drift)
            desired[guessed] = self._desired(at, drift, np.zeros(len(at)), np.arange(len(at)))
            post = _rowsum(desired[guessed])
            with np.errstate(divide="ignore", invalid="ignore"):
                weight = desired[guessed] / post[:, None]
            moved[guessed] = _rowmax(np.abs(weight - self.guess[at])) > GUESS_TOL
        none = np.int64(1) << 40  # no such trade
        turned_down = np.full(n, none)
        np.minimum.at(turned_down, index[~wants], step[~wants])
        mistaken = np.full(n, none)
        np.minimum.at(mistaken, index[wants & moved], step[wants & moved])
        keep = np.minimum(chain.count, np.minimum(turned_down, mistaken + 1))
        resume = chain.end.copy()
        # The chain stops at a candidate the core turned down, unless a wrong guess came first
        # (what follows a wrong guess was looked at in holdings that were never there).
        down = turned_down < mistaken
        resume[down] = times[first[down] + turned_down[down]]
        self.skip[act[down]] = resume[down]
        wrong = ~down & (mistaken < chain.count)
        resume[wrong] = times[first[wrong] + mistaken[wrong]] + 1
        self.exact[act[wrong]] = True  # from now on asked at every candidate
        right = ~down & ~wrong
        self.allow[act[right]] = np.minimum(CHAIN_GROWTH * self.allow[act[right]], MAX_CHAIN)
        kept = np.flatnonzero(step < keep[index])
        carried = np.where(sure, _rowsum(desired), _rowsum(held))
        self._replay(
            act, index[kept], times[kept], held[kept], desired[kept], carried[kept], resume
        )

    def _replay(
        self,
        act: IntArray,
        index: IntArray,
        times: IntArray,
        held: FloatArray,
        desired: FloatArray,
        carried: FloatArray,
        resume: IntArray,
    ) -> None:
        """Make the kept trades (sorted by variant, then time) and record up to ``resume``.

        ``carried`` is the value the chain carried on after each trade: the value before it for
        a guessed trade, the core's destination for an exact one.

        A guess that held means the holdings actually there before each trade are the guessed
        ones ``held`` times a factor ``x`` (1 for a variant's first trade of the round); every
        core policy is homogeneous in the holdings when nothing flows, so the core's destination
        ``desired`` scales by the same factor, and the trades' costs, turnover and gains follow.
        """
        plan = self.plan
        rows = act[index]
        n_trades = len(rows)
        lead, last = _run_starts(index), _run_ends(index)
        heads = np.flatnonzero(lead)
        spec_total = held @ self.ones
        trade = np.abs(desired - held)
        traded = trade @ self.ones
        count = (trade > NOISE * spec_total[:, None]) @ self.ones
        post = desired @ self.ones
        x0 = (self.units[rows[heads]] * plan.prices[times[heads]]) @ self.ones / spec_total[heads]
        costs = plan.costs
        if costs.fixed == 0:
            # The share of a trade's value kept after costs does not depend on x.
            with np.errstate(divide="ignore", invalid="ignore"):
                paid = np.minimum(costs.bps * 1e-4 * traded, post)
                keep = np.where(post > 0, 1.0 - paid / post, 0.0)
                growth = keep * post / carried
            x = _recurrence(growth, np.zeros(n_trades), x0, lead)[0]
        else:
            x, keep = np.empty(n_trades), np.empty(n_trades)
            x[heads] = x0
            lens = np.diff(np.append(heads, n_trades))
            for j in range(int(lens.max(initial=0))):
                e = heads[lens > j] + j  # every variant's j-th trade
                if j:
                    x[e] = x[e - 1] * keep[e - 1] * post[e - 1] / carried[e - 1]
                value = x[e] * post[e]
                charge = costs.bps * 1e-4 * x[e] * traded[e] + costs.fixed * count[e]
                with np.errstate(divide="ignore", invalid="ignore"):
                    keep[e] = np.where(value > 0, 1.0 - np.minimum(charge, value) / value, 0.0)
        now = held * x[:, None]
        final = desired * (x * keep)[:, None]
        self._book_gains(rows, times, now, final, chained=True)
        self.costs += np.bincount(rows, x * post * (1.0 - keep), minlength=self.V)
        with np.errstate(divide="ignore", invalid="ignore"):
            churn = np.where(spec_total > 0, traded / 2 / spec_total, 0.0)
        self.turnover += np.bincount(rows, churn, minlength=self.V)
        self.events += np.bincount(rows, minlength=self.V)
        self.log.append((rows, times))
        total_after = final @ self.ones
        units_after = final / plan.prices[times]
        ends = np.flatnonzero(last)
        done = rows[ends]
        self.next_review[done] = times[ends] + plan.cooldown[done]
        with np.errstate(divide="ignore", invalid="ignore"):
            self.guess[done] = np.where(
                total_after[ends, None] > 0, final[ends] / total_after[ends, None], self.guess[done]
            )
        # Stretches at constant units: up to each trade (its observation included, before it),
        # then from the last trade of each variant to where it resumes.
        start = self.pos[act]
        begin = np.where(lead, start[index], np.roll(times + 1, 1))
        before = self.units[rows]
        before[~lead] = units_after[np.flatnonzero(~lead) - 1]
        self.units[done] = units_after[ends]
        tail_from = start.copy()
        tail_from[index[ends]] = times[ends] + 1
        tail = np.flatnonzero(resume > tail_from)
        self.stretches.append(
            (
                np.concatenate([rows, act[tail]]),
                np.concatenate([begin, tail_from[tail]]),
                np.concatenate([times + 1, resume[tail]]),
                np.concatenate([before, self.units[act[tail]]]),
            )
        )
        self.after_trades.append((rows, times, total_after))
        self.pos[act] = resume

    def flush(self) -> None:
        """Record every stretch kept so far, in chunks of about ``RECORD_CHUNK`` observations.

        Recording is deferred so that it happens in a few large passes rather than a small one
        per round; the values after the trades overwrite the values before them.
        """
        if not self.stretches:
            return
        who, start, stop, units = (
            np.concatenate([s[i] for s in self.stretches]) for i in range(4)
        )
        order = np.argsort(who, kind="stable")  # by variant; a variant's stretches in time order
        # Long stretches in pieces, so that every pass works on arrays that stay in cache.
        pieces = (stop - start + RECORD_CHUNK - 1)[order] // RECORD_CHUNK
        order = np.repeat(order, pieces)
        piece = np.arange(len(order)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
        start = start[order] + piece * RECORD_CHUNK
        who, stop, units = who[order], np.minimum(stop[order], start + RECORD_CHUNK), units[order]
        ends = np.cumsum(stop - start)
        cuts = np.searchsorted(ends, np.arange(RECORD_CHUNK, int(ends[-1]), RECORD_CHUNK))
        for part in np.split(np.arange(len(who)), np.unique(cuts + 1)):
            if part.size:
                self._record_stretches(who[part], start[part], stop[part], units[part])
        for rows, times, value in self.after_trades:
            self.value[rows, times] = value
        self.stretches.clear()
        self.after_trades.clear()

    def _record_stretches(
        self, who: IntArray, start: IntArray, stop: IntArray, units: FloatArray
    ) -> None:
        """Record observations ``[start, stop)`` of variants ``who`` (grouped) holding ``units``."""
        lens = stop - start
        size = int(lens.sum())
        if size == 0:
            return
        times = np.arange(size) + np.repeat(start - (np.cumsum(lens) - lens), lens)
        held = np.repeat(units, lens, axis=0)
        held *= np.take(self.plan.prices, times, axis=0)
        total = held @ self.ones
        held /= np.where(total > 0, total, np.inf)[:, None]
        heads = np.flatnonzero(_run_starts(who))
        self._record(who[heads], np.add.reduceat(lens, heads), times, held, total)

    def flow_step(self, t: int, slot: int) -> None:
        """Observation ``t`` with a cash flow, for every variant together."""
        rows = np.arange(self.V)
        times = np.full(self.V, t)
        held = self.units * self.plan.prices[t]
        drift = self._measure(rows, held)
        weight = np.nan_to_num(drift.weight)  # an emptied portfolio has no weights
        self._record(rows, np.ones(self.V, dtype=np.int64), times, weight, drift.total)
        flow = np.maximum(np.full(self.V, self.plan.flows[t]), -drift.total)
        self.flow_done[:, slot] = flow
        pidx = self.plan.policy_idx
        places_flow = (self.kind == _SILENT) & self.has_policy[pidx] & (flow != 0)
        wants = self._policy_wants(rows, drift) & self._reviewed(rows, times)
        by_policy = np.flatnonzero(wants | places_flow)
        if by_policy.size:
            desired = self._desired(rows, drift, flow, by_policy)
            final = self._policy_trades(
                by_policy, times[by_policy], held[by_policy], desired, flow[by_policy]
            )
            self.value[by_policy, t] = _rowsum(final)
        pro_rata = np.flatnonzero(~(wants | places_flow))
        if pro_rata.size:
            total = drift.total[pro_rata]
            f = flow[pro_rata]
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = np.where(total > 0, (total + f) / total, 0.0)
            desired = held[pro_rata] * scale[:, None]
            empty = total <= 0
            desired[empty] = np.maximum(f[empty], 0.0)[:, None] * self.plan.target[pro_rata[empty]]
            final = self._settle(pro_rata, times[pro_rata], held[pro_rata], desired, f)
            self.value[pro_rata, t] = _rowsum(final)
        self.pos[:] = t + 1

    def result(self) -> SimResult:
        self.flush()
        return SimResult(
            value=self.value,
            flow_times=self.flow_times,
            flow_done=self.flow_done,
            events=self.events,
            turnover=self.turnover,
            costs=self.costs,
            realised=self.realised,
            realised_by_year=self.realised_by_year,
            years=self.years,
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
