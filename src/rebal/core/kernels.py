"""Per-account kernels: the one implementation of band tests, fills and policy destinations.

Each function here works on a single account: 1-D arrays over its K slots and scalars. They are
compiled (numba) so that

* the book-wide functions of the core (:func:`rebal.core.drift.measure_drift`, the policies of
  :mod:`rebal.core.policies`, :mod:`rebal.core.fill`) run them over every account in one
  compiled loop, without the dozens of whole-array passes a numpy formulation needs; and
* the backtest lab calls the very same functions inside its own per-observation loop, so a
  simulated rebalance is decided and sized by the code that sizes a live one.

Conventions of the policy kernels (shared with :class:`rebal.core.policies.PolicyInput`):
``held`` is the market value per slot, ``frozen`` the slots that may not trade (restricted,
padding), ``spendable`` the cash the policy may spend (negative: cash to raise), ``target`` the
target weights, ``rail_high`` the upper inner rails (weights) and ``wide_breach`` whether any
slot is outside its wide band. Destinations are written into ``out``.

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



# -- bands -----------------------------------------------------------------------------------


@inline_kernel
def outside(weight: float, low: float, high: float) -> bool:
    """Whether ``weight`` lies outside ``[low, high]`` by more than :data:`EDGE_SLACK`."""
    return bool(weight < low - EDGE_SLACK or weight > high + EDGE_SLACK)


@kernel
def outside_rows(weight: FloatArray, low: FloatArray, high: FloatArray, checked: BoolArray) -> Any:
    """(N, K): checked slots whose weight is outside ``[low, high]``."""
    n, k = weight.shape
    out = np.zeros((n, k), dtype=np.bool_)
    for i in range(n):
        for j in range(k):
            out[i, j] = checked[i, j] and outside(weight[i, j], low[i, j], high[i, j])
    return out


@inline_kernel
def any_outside(weight: FloatArray, low: FloatArray, high: FloatArray) -> bool:
    """Whether any slot of one account is outside its band ``[low, high]``."""
    for j in range(weight.shape[0]):  # noqa: SIM110 (numba compiles no generator)
        if outside(weight[j], low[j], high[j]):
            return True
    return False


# -- fills -----------------------------------------------------------------------------------


@kernel
def level_fill(gap: FloatArray, budget: float, out: FloatArray) -> None:
    """Allocate ``budget`` closing the largest ``gap`` first (negative gaps count as zero).

    Finds the level ``L`` with ``sum(max(gap - L, 0)) = budget`` and gives each slot
    ``max(gap - L, 0)``: the allocation that minimises the largest remaining gap. When the
    budget covers every gap, every gap is closed and the remainder is left to the caller.
    """
    k = gap.shape[0]
    g = np.maximum(gap, 0.0)
    order = np.sort(g)[::-1]  # descending
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
        out[j] = max(g[j] - level, 0.0)


@kernel
def proportional_fill(share: FloatArray, cap: FloatArray, budget: float, out: FloatArray) -> None:
    """Give each slot ``min(cap, lam * share)``, ``lam`` chosen to spend ``budget`` in full.

    Proportional to ``share`` until a slot reaches its cap, the rest flowing to the others
    (seed 001: "in proportion to the relative distance, none past target"). Slots with a
    non-positive share or cap get nothing; a budget beyond the caps fills every cap.
    """
    k = share.shape[0]
    s = np.zeros(k)
    c = np.zeros(k)
    ratio = np.full(k, np.inf)  # lam at which a slot saturates
    for j in range(k):
        if share[j] > 0 and cap[j] > 0:
            s[j], c[j] = share[j], cap[j]
            ratio[j] = cap[j] / share[j]
    order = np.argsort(ratio, kind="mergesort")
    b = max(budget, 0.0)
    share_left = s.sum()
    capped_sum = 0.0
    free_share = share_left
    cap_before = 0.0
    for j in range(k):
        # With lam = ratio[j], slots order[:j + 1] are saturated.
        i = order[j]
        cap_before += c[i]
        share_left -= s[i]
        if not np.isfinite(ratio[i]) or cap_before + ratio[i] * share_left > b:
            break
        capped_sum, free_share = cap_before, share_left
    lam = (b - capped_sum) / free_share if free_share > 0 else np.inf
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
    values: FloatArray, amount: float, target: FloatArray, frozen: BoolArray
) -> None:
    """Sell ``amount`` from ``values`` (in place): most overweight first, then pro rata."""
    if not amount > 0:
        return
    k = values.shape[0]
    over = np.zeros(k)
    for j in range(k):
        if not frozen[j]:
            over[j] = values[j] - target[j]
    first = np.empty(k)
    level_fill(over, amount, first)
    values -= first
    rest = max(amount - first.sum(), 0.0)
    sellable = np.zeros(k)
    for j in range(k):
        if not frozen[j]:
            sellable[j] = values[j]
    second = np.empty(k)
    proportional_fill(sellable, sellable, rest, second)
    values -= second


@kernel
def spend_cash(
    values: FloatArray, amount: float, target: FloatArray, frozen: BoolArray
) -> None:
    """Buy with ``amount`` (in place): most underweight first; beyond every gap, at target."""
    if not amount > 0:
        return
    k = values.shape[0]
    under = np.zeros(k)
    weight_sum = 0.0
    for j in range(k):
        if not frozen[j]:
            under[j] = target[j] - values[j]
            weight_sum += target[j]
    first = np.empty(k)
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
def _to_rails(
    held: FloatArray,
    frozen: BoolArray,
    spendable: float,
    target: FloatArray,
    rail_high: FloatArray,
    out: FloatArray,
) -> None:
    # Sell everything above its upper rail down to the rail; buy below-target positions in
    # proportion to their relative distance, none past target; raise any cash still owed
    # from the most overweight.
    k = held.shape[0]
    post_total = held.sum() + spendable
    budget = spendable
    for j in range(k):
        rail_value = rail_high[j] * post_total
        out[j] = rail_value if not frozen[j] and held[j] > rail_value else held[j]
        budget += held[j] - out[j]
    goal = np.empty(k)
    target_value(held, frozen, spendable, target, goal)
    if budget > 0:
        shortfall = np.zeros(k)
        distance = np.zeros(k)
        for j in range(k):
            if not frozen[j]:
                shortfall[j] = goal[j] - out[j]
                distance[j] = shortfall[j] / goal[j] if goal[j] > 0 else 0.0
        bought = np.empty(k)
        proportional_fill(distance, shortfall, budget, bought)
        out += bought
    raise_cash(out, -budget, goal, frozen)
    _keep_frozen(held, frozen, out)


@kernel
def _with_cash_flow(
    held: FloatArray, frozen: BoolArray, spendable: float, target: FloatArray, out: FloatArray
) -> None:
    goal = np.empty(held.shape[0])
    target_value(held, frozen, spendable, target, goal)
    out[:] = held
    spend_cash(out, spendable, goal, frozen)
    raise_cash(out, -spendable, goal, frozen)
    _keep_frozen(held, frozen, out)


@inline_kernel
def breach_triggered(code: int) -> bool:
    """Whether policy ``code`` trades only on a band breach (else whenever it is asked)."""
    return code in (BANDS, RAILS, TIERED)


@inline_kernel
def wants(code: int, any_breach: bool, checkable: bool) -> bool:
    """Whether policy ``code`` trades an account with this breach state when asked."""
    return any_breach if breach_triggered(code) else checkable


@kernel
def destination(
    code: int,
    held: FloatArray,
    frozen: BoolArray,
    spendable: float,
    target: FloatArray,
    rail_high: FloatArray,
    wide_breach: bool,
    out: FloatArray,
) -> None:
    """Write into ``out`` the value each slot should have after policy ``code`` trades."""
    if code in (FULL, BANDS) or (code == TIERED and wide_breach):
        _to_target(held, frozen, spendable, target, out)
    elif code in (RAILS, TIERED):
        _to_rails(held, frozen, spendable, target, rail_high, out)
    elif code == CASH_FLOW:
        _with_cash_flow(held, frozen, spendable, target, out)
    else:  # LIQUIDATION: sell everything that may be sold
        out[:] = 0.0
        _keep_frozen(held, frozen, out)


@kernel
def destinations(
    code: int,
    held: FloatArray,
    frozen: BoolArray,
    spendable: FloatArray,
    target: FloatArray,
    rail_high: FloatArray,
    wide_breach: BoolArray,
) -> Any:
    """:func:`destination` of every account (rows of the (N, K) arrays)."""
    out = np.empty(held.shape)
    for i in range(held.shape[0]):
        destination(
            code, held[i], frozen[i], spendable[i], target[i], rail_high[i], wide_breach[i], out[i]
        )
    return out


@kernel
def wants_rows(code: int, any_breach: BoolArray, checkable: BoolArray) -> Any:
    """:func:`wants` of every account."""
    out = np.empty(any_breach.shape[0], dtype=np.bool_)
    for i in range(out.shape[0]):
        out[i] = wants(code, any_breach[i], checkable[i])
    return out
