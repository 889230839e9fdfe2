"""The fills policies spend and raise cash with: all of the budget, none past a cap or a gap.

A deposit into an account whose positions all sit under target must be invested in full,
whatever the rounding of the shortfalls: the budget then equals the sum of the caps exactly, the
knife edge where a running difference once left a residue and the fill bought nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebal.core import kernels

# Shares and caps as accounts have them: zero, or between a billionth and ten million.
AMOUNTS = st.just(0.0) | st.floats(min_value=1e-9, max_value=1e7)


def fill(share: np.ndarray, cap: np.ndarray, budget: float) -> np.ndarray:
    out = np.empty(len(share))
    kernels.proportional_fill(share, cap, budget, out, np.empty((4, len(share))))
    return out


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(AMOUNTS, AMOUNTS), min_size=1, max_size=8),
    st.floats(min_value=0.0, max_value=2.0),
)
def test_the_fill_spends_the_budget_up_to_the_caps(
    slots: list[tuple[float, float]], scale: float
) -> None:
    share = np.array([s for s, _ in slots])
    cap = np.array([c for _, c in slots])
    budget = scale * cap[share > 0].sum()
    out = fill(share, cap, budget)
    assert (out >= 0).all() and (out <= cap).all()
    assert (out[share == 0] == 0).all()
    spendable = cap[(share > 0) & (cap > 0)].sum()
    assert out.sum() == pytest.approx(min(budget, spendable), rel=1e-9, abs=1e-6)
    # Slots short of their cap got the same amount per unit of share.
    open_ = (share > 0) & (out < cap * (1 - 1e-9))
    if open_.sum() > 1:
        per_share = out[open_] / share[open_]
        np.testing.assert_allclose(per_share, per_share[0], rtol=1e-9, atol=1e-12)


def test_a_budget_equal_to_the_caps_fills_every_cap() -> None:
    # Shortfalls of a real account after a 300 deposit, each under target; their sum is the
    # deposit to the last bit, and the shares are the relative distances to target.
    cap = np.array([9.723625452813394, 131.79035853457572, 158.4860160126109])
    goal = np.array([5191.352064929948, 3114.8112389579687, 2076.5408259719793])
    out = fill(cap / goal, cap, 300.0)
    np.testing.assert_allclose(out, cap, rtol=1e-12)


def test_a_deposit_into_an_account_under_target_is_invested_in_full() -> None:
    held = np.array([5181.628439477135, 2983.020880423393, 1918.0548099593684])
    target = np.array([0.5, 0.3, 0.2])
    edges = (target * 0.8, target - 0.0053, target + 0.0053)  # band low, rails low and high
    for code in (kernels.RAILS, kernels.TIERED, kernels.CASH_FLOW):
        out, work = np.empty(3), np.empty((kernels.WORK_ROWS, 3))
        frozen = np.zeros(3, bool)
        kernels.destination_into(code, held, frozen, (300.0, 0.0), target, edges, False, out, work)
        assert out.sum() == pytest.approx(held.sum() + 300.0, rel=1e-12)
        np.testing.assert_allclose(out, target * (held.sum() + 300.0), rtol=1e-12)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(AMOUNTS | AMOUNTS.map(lambda x: -x), min_size=1, max_size=8),
    st.floats(min_value=0.0, max_value=2.0),
)
def test_the_level_fill_closes_the_largest_gaps_first(gaps: list[float], scale: float) -> None:
    gap = np.array(gaps)
    open_gaps = np.maximum(gap, 0.0)
    budget = scale * open_gaps.sum()
    out = np.empty(len(gap))
    kernels.level_fill(gap, budget, out)
    assert (out >= 0).all() and (out <= open_gaps + 1e-9 * open_gaps.max(initial=0)).all()
    assert out.sum() == pytest.approx(min(budget, open_gaps.sum()), rel=1e-9, abs=1e-6)
    # What is left of the gaps that got something is one common level, the largest left.
    left = open_gaps - out
    funded = out > 0
    if funded.any():
        np.testing.assert_allclose(left[funded], left[funded].max(), rtol=1e-9, atol=1e-6)
        assert left.max() <= left[funded].max() + 1e-6
