"""Per-account kernels: the one implementation of band tests, fills and policy destinations.

Each function here works on a single account: 1-D arrays over its K slots and scalars. They are
compiled (numba) so that

* the book-wide functions of the core (the drift, statuses and orders of :mod:`rebal.core.drift`,
  :mod:`rebal.core.status` and :mod:`rebal.core.trades`, the policies of
  :mod:`rebal.core.policies`, the compiled run of :mod:`rebal.core.engine`) run them over every
  account in one compiled loop, without the dozens of whole-array passes a numpy formulation
  needs; the few of numpy's element rules they must match bit for bit (NaN-propagating
  maximum, ``nan_to_num``, the pairwise order of a sum) are here too; and
* the backtest lab calls the very same functions inside its own per-observation loop, so a
  simulated rebalance is decided and sized by the code that sizes a live one.

Conventions of the policy kernels:
``held`` is the market value per slot, ``frozen`` the slots that may not trade (restricted,
padding), ``cash`` the cash the policy may spend (negative: cash to raise) and the cash the
account keeps aside, ``target`` the target weights, ``edges`` the lower band edges and the lower
and upper inner rails (weights) and ``wide_breach`` whether any slot is outside its wide band.
Destinations are written into ``out``.

One basis for every weight: targets, bands and rails are shares of the account's whole value
after its pending flow (securities + cash + flow), the value the kept cash is a share of too. So
``held.sum() + spendable + kept`` is the value an edge of weight ``w`` is ``w`` times of.

Policy codes are small integers so that compiled callers can dispatch on them; the policy
objects of :mod:`rebal.core.policies` carry theirs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np

from rebal.core.types import BoolArray, FloatArray

_F = TypeVar("_F", bound=Callable[..., Any])

#: Weights are compared with band edges with this slack, so that float noise on a position
#: exactly at its edge does not flip it out of band.
EDGE_SLACK = 1e-12

#: Policy codes (see :mod:`rebal.core.policies` for what each policy does).
FULL, BANDS, RAILS, TIERED, CASH_FLOW, LIQUIDATION = range(6)


def kernel(fn: _F) -> _F:
    """Compile ``fn`` for use from Python and from other kernels (cached on disk).

    ``error_model="numpy"``: a division by zero gives inf or NaN, as in numpy, never raises.
    """
    return cast(_F, numba.njit(cache=True, nogil=True, error_model="numpy")(fn))


def inline_kernel(fn: _F) -> _F:
    """:func:`kernel` for the small tests a backtest runs at every observation: inlined into
    compiled callers, where a call would cost more than the test."""
    compiled = numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")(fn)
    return cast(_F, compiled)


# -- numpy's element rules, for kernels that replace a numpy formulation bit for bit ----------


@inline_kernel
def maximum(a: float, b: float) -> float:
    """``np.maximum`` of two floats: NaN if either is NaN."""
    if a != a or b != b:
        return a + b
    return a if a >= b else b


@inline_kernel
def minimum(a: float, b: float) -> float:
    """``np.minimum`` of two floats: NaN if either is NaN."""
    if a != a or b != b:
        return a + b
    return a if a <= b else b


@inline_kernel
def nan_to_num(x: float) -> float:
    """``np.nan_to_num`` of a float: NaN becomes 0, infinities the largest finite floats."""
    if x != x:
        return 0.0
    if x == np.inf:
        return np.finfo(np.float64).max
    if x == -np.inf:
        return -np.finfo(np.float64).max
    return x


@kernel
def row_sum(a: FloatArray) -> float:
    """``a.sum()`` in numpy's order (pairwise, eight accumulators): the same float, bit for bit.

    A plain loop may differ in the last bit, enough to move a weight across a band edge.
    """
    n = a.shape[0]
    if n < 8:
        res: float = 0.0
        for i in range(n):
            res += a[i]
        return res
    if n > 128:
        half = n // 2
        half -= half % 8
        left: float = row_sum(a[:half])
        return left + row_sum(a[half:])
    r0, r1, r2, r3, r4, r5, r6, r7 = a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]
    i = 8
    while i < n - n % 8:
        r0, r1, r2, r3 = r0 + a[i], r1 + a[i + 1], r2 + a[i + 2], r3 + a[i + 3]
        r4, r5, r6, r7 = r4 + a[i + 4], r5 + a[i + 5], r6 + a[i + 6], r7 + a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[i]
        i += 1
    return res


# -- bands -----------------------------------------------------------------------------------


@inline_kernel
def outside(weight: float, low: float, high: float) -> bool:
    """Whether ``weight`` lies outside ``[low, high]`` by more than :data:`EDGE_SLACK`."""
    return bool(weight < low - EDGE_SLACK or weight > high + EDGE_SLACK)


# -- fills -----------------------------------------------------------------------------------
#
# The fills and destinations below take ``work``: rows of K floats of scratch space, so that a
# loop over many accounts allocates it once (:data:`WORK_ROWS` rows serve any destination).

#: Rows of scratch space :func:`destination_into` needs.
WORK_ROWS = 9

#: Money by which a position must clear its lower band edge not to be lifted to its rail: one
#: nearer the edge could end just below it once its order is rounded to cents.
LIFT_MARGIN = 0.01


@inline_kernel
def _sort_descending(a: FloatArray) -> None:
    """Sort ``a`` in place, largest first and NaN before all (``np.sort(a)[::-1]``)."""
    for j in range(1, a.shape[0]):
        x = a[j]
        i = j - 1
        while i >= 0 and (x > a[i] or (np.isnan(x) and not np.isnan(a[i]))):
            a[i + 1] = a[i]
            i -= 1
        a[i + 1] = x


@kernel
def level_fill(gap: FloatArray, budget: float, out: FloatArray) -> None:
    """Allocate ``budget`` closing the largest ``gap`` first (negative gaps count as zero).

    Finds the level ``L`` with ``sum(max(gap - L, 0)) = budget`` and gives each slot
    ``max(gap - L, 0)``: the allocation that minimises the largest remaining gap. When the
    budget covers every gap, every gap is closed and the remainder is left to the caller.
    """
    k = gap.shape[0]
    order = out  # the gaps, largest first, until the level is known
    for j in range(k):
        order[j] = maximum(gap[j], 0.0)
    _sort_descending(order)
    b = max(budget, 0.0)
    csum = 0.0
    count = 0
    level_sum = 0.0
    for j in range(k):
        csum += order[j]
        # Spending needed to bring the top j + 1 gaps down to the (j + 1)-th.
        if csum - (j + 1) * order[j] < b:
            count = j + 1
            level_sum = csum
    if count == 0:
        count, level_sum = 1, order[0] if k else 0.0
    level = max((level_sum - b) / count, 0.0)
    for j in range(k):
        out[j] = max(maximum(gap[j], 0.0) - level, 0.0)


@kernel
def proportional_fill(
    share: FloatArray, cap: FloatArray, budget: float, out: FloatArray, work: FloatArray
) -> None:
    """Give each slot ``min(cap, lam * share)``, ``lam`` chosen to spend ``budget`` in full.

    Proportional to ``share`` until a slot reaches its cap, the rest flowing to the others
    (seed 001: "in proportion to the relative distance, none past target"). Slots with a
    non-positive share or cap get nothing; a budget beyond the caps fills every cap.
    ``work``: 4 rows.
    """
    k = share.shape[0]
    s, c, ratio, tail = work[0], work[1], work[2], work[3]  # ratio: lam at which a slot saturates
    order = out  # slots by ratio (a stable sort), until lam is known
    for j in range(k):
        s[j], c[j], ratio[j] = 0.0, 0.0, np.inf
        if share[j] > 0 and cap[j] > 0:
            s[j], c[j] = share[j], cap[j]
            ratio[j] = cap[j] / share[j]
        i = j - 1
        while i >= 0 and ratio[int(order[i])] > ratio[j]:
            order[i + 1] = order[i]
            i -= 1
        order[i + 1] = j
    # tail[j]: the share of the slots after order[j], summed from the end (a running difference
    # would leave residues of rounding that, multiplied by a large ratio, misjudge the budget).
    after = 0.0
    for j in range(k - 1, -1, -1):
        tail[j] = after
        after += s[int(order[j])]
    b = max(budget, 0.0)
    capped_sum = 0.0
    free_share = after  # the share of the slots not yet filled to their caps
    saturated = 0  # slots order[:saturated] are filled to their caps at lam
    for j in range(k):
        # Would lam = ratio[i] (slots order[:j + 1] full) still fit the budget?
        i = int(order[j])
        if not np.isfinite(ratio[i]) or capped_sum + c[i] + ratio[i] * tail[j] > b:
            break
        capped_sum += c[i]
        free_share = tail[j]
        saturated = j + 1
    lam = (b - capped_sum) / free_share if free_share > 0 else np.inf
    if saturated > 0:  # the saturated slots fitted the budget: lam reaches their ratios
        lam = max(lam, ratio[int(order[saturated - 1])])
    for j in range(k):
        out[j] = min(c[j], lam * s[j]) if s[j] > 0 else 0.0


# -- what a policy may spend and where the targets lie -------------------------------------


@kernel
def target_value(
    held: FloatArray, frozen: BoolArray, spendable: float, target: FloatArray, out: FloatArray
) -> None:
    """Target value per free slot, the free targets sharing what the frozen slots leave."""
    weight_sum = 0.0
    frozen_value = 0.0
    for j in range(held.shape[0]):
        if frozen[j]:
            frozen_value += held[j]
        else:
            weight_sum += target[j]
    budget = max(held.sum() + spendable - frozen_value, 0.0)
    for j in range(held.shape[0]):
        out[j] = 0.0 if frozen[j] or weight_sum <= 0 else target[j] / weight_sum * budget


@kernel
def _keep_frozen(held: FloatArray, frozen: BoolArray, out: FloatArray) -> None:
    for j in range(held.shape[0]):
        out[j] = held[j] if frozen[j] else max(out[j], 0.0)


@kernel
def raise_cash(
    values: FloatArray, amount: float, target: FloatArray, frozen: BoolArray, work: FloatArray
) -> None:
    """Sell ``amount`` from ``values`` (in place): most overweight first, then pro rata.

    ``work``: 8 rows."""
    if not amount > 0:
        return
    k = values.shape[0]
    over, first, sellable, second = work[0], work[1], work[2], work[3]
    for j in range(k):
        over[j] = 0.0 if frozen[j] else values[j] - target[j]
    level_fill(over, amount, first)
    values -= first
    rest = max(amount - first.sum(), 0.0)
    for j in range(k):
        sellable[j] = 0.0 if frozen[j] else values[j]
    proportional_fill(sellable, sellable, rest, second, work[4:])
    values -= second


@kernel
def spend_cash(
    values: FloatArray, amount: float, target: FloatArray, frozen: BoolArray, work: FloatArray
) -> None:
    """Buy with ``amount`` (in place): most underweight first; beyond every gap, at target.

    ``work``: 2 rows."""
    if not amount > 0:
        return
    k = values.shape[0]
    under, first = work[0], work[1]
    weight_sum = 0.0
    for j in range(k):
        under[j] = 0.0
        if not frozen[j]:
            under[j] = target[j] - values[j]
            weight_sum += target[j]
    level_fill(under, amount, first)
    rest = max(amount - first.sum(), 0.0)
    for j in range(k):
        second = target[j] / weight_sum * rest if not frozen[j] and weight_sum > 0 else 0.0
        values[j] += first[j] + second


# -- policy destinations ---------------------------------------------------------------------


@kernel
def _to_target(
    held: FloatArray, frozen: BoolArray, spendable: float, target: FloatArray, out: FloatArray
) -> None:
    target_value(held, frozen, spendable, target, out)
    _keep_frozen(held, frozen, out)


@kernel
def _lift_breaches(
    out: FloatArray,
    frozen: BoolArray,
    goal: FloatArray,
    edges: tuple[FloatArray, FloatArray],
    basis: float,
    work: FloatArray,
) -> None:
    """Lift the positions of ``out`` (in place) still below their band, or within
    :data:`LIFT_MARGIN` of its edge, to their lower inner rails (none past its ``goal``), with
    money raised from the positions above their goals: most overweight first, none below its
    goal. The money buys the lifted positions up to their band edges first (most underweight
    first), then up to their rails. ``edges``: the lower band edges and lower rails, weights of
    ``basis``. ``work``: 5 rows."""
    band_low, rail_low = edges
    if not basis > 0:
        return
    k = out.shape[0]
    lift, over, sold, gap, bought = work[0], work[1], work[2], work[3], work[4]
    need = 0.0
    for j in range(k):
        lift[j], over[j] = 0.0, 0.0
        if frozen[j]:
            continue
        if out[j] < band_low[j] * basis + LIFT_MARGIN:
            lift[j] = max(min(rail_low[j] * basis, goal[j]) - out[j], 0.0)
            need += lift[j]
        else:
            over[j] = out[j] - goal[j]
    if not need > 0:
        return
    level_fill(over, need, sold)
    raised = 0.0
    for j in range(k):
        out[j] -= sold[j]
        raised += sold[j]
        gap[j] = min(band_low[j] * basis, goal[j]) - out[j] if lift[j] > 0 else 0.0
    level_fill(gap, raised, bought)
    for j in range(k):
        out[j] += bought[j]
        raised -= bought[j]
        lift[j] -= bought[j]
    level_fill(lift, raised, bought)
    out += bought


@kernel
def _to_rails(
    held: FloatArray,
    frozen: BoolArray,
    cash: tuple[float, float],
    target: FloatArray,
    edges: tuple[FloatArray, FloatArray, FloatArray],
    out: FloatArray,
    work: FloatArray,
) -> None:
    # Sell everything above its upper rail down to the rail; buy below-target positions in
    # proportion to their relative distance, none past target; raise any cash still owed
    # from the most overweight; lift what is still below its band to its lower rail (seed
    # 001's sells and cash may not suffice). ``work``: 9 rows.
    spendable, kept = cash
    band_low, rail_low, rail_high = edges
    k = held.shape[0]
    basis = held.sum() + spendable + kept
    budget = spendable
    for j in range(k):
        rail_value = rail_high[j] * basis
        out[j] = rail_value if not frozen[j] and held[j] > rail_value else held[j]
        budget += held[j] - out[j]
    goal = work[0]
    target_value(held, frozen, spendable, target, goal)
    if budget > 0:
        shortfall, distance, bought = work[1], work[2], work[3]
        for j in range(k):
            shortfall[j], distance[j] = 0.0, 0.0
            if not frozen[j]:
                shortfall[j] = goal[j] - out[j]
                distance[j] = shortfall[j] / goal[j] if goal[j] > 0 else 0.0
        proportional_fill(distance, shortfall, budget, bought, work[4:])
        out += bought
    raise_cash(out, -budget, goal, frozen, work[1:])
    _lift_breaches(out, frozen, goal, (band_low, rail_low), basis, work[1:])
    _keep_frozen(held, frozen, out)


@kernel
def _with_cash_flow(
    held: FloatArray,
    frozen: BoolArray,
    spendable: float,
    target: FloatArray,
    out: FloatArray,
    work: FloatArray,
) -> None:
    # ``work``: 9 rows.
    goal = work[0]
    target_value(held, frozen, spendable, target, goal)
    out[:] = held
    spend_cash(out, spendable, goal, frozen, work[1:])
    raise_cash(out, -spendable, goal, frozen, work[1:])
    _keep_frozen(held, frozen, out)


@inline_kernel
def breach_triggered(code: int) -> bool:
    """Whether policy ``code`` trades only on a band breach (else whenever it is asked)."""
    return code in (BANDS, RAILS, TIERED)


@inline_kernel
def aims_at_bands(code: int) -> bool:
    """Whether policy ``code`` trades every position it may trade into its band (where the
    account can fund it); cash-flow and liquidation do not."""
    return code in (FULL, BANDS, RAILS, TIERED)


@inline_kernel
def wants(code: int, any_breach: bool, checkable: bool) -> bool:
    """Whether policy ``code`` trades an account with this breach state when asked."""
    return any_breach if breach_triggered(code) else checkable


@kernel
def destination_into(
    code: int,
    held: FloatArray,
    frozen: BoolArray,
    cash: tuple[float, float],
    target: FloatArray,
    edges: tuple[FloatArray, FloatArray, FloatArray],
    wide_breach: bool,
    out: FloatArray,
    work: FloatArray,
) -> None:
    """Write into ``out`` the value each slot should have after policy ``code`` trades;
    ``cash`` is (spendable, kept), ``edges`` (lower band edge, lower rail, upper rail) per slot;
    ``work``: :data:`WORK_ROWS` rows of scratch space."""
    spendable = cash[0]
    if code in (FULL, BANDS) or (code == TIERED and wide_breach):
        _to_target(held, frozen, spendable, target, out)
    elif code in (RAILS, TIERED):
        _to_rails(held, frozen, cash, target, edges, out, work)
    elif code == CASH_FLOW:
        _with_cash_flow(held, frozen, spendable, target, out, work)
    else:  # LIQUIDATION: sell everything that may be sold
        out[:] = 0.0
        _keep_frozen(held, frozen, out)
