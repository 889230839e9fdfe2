"""Splitting a budget across the slots of each account, vectorised over accounts.

Two ways of spending (or raising) an amount against per-slot gaps, both exact to float
precision and both without a Python loop per account:

* :func:`level_fill` closes the largest gaps first ("most underweight first"): it finds the
  level ``L`` with ``sum(max(gap - L, 0)) = budget`` and gives each slot ``max(gap - L, 0)``.
  That is the allocation that minimises the largest remaining gap (and the squared distance).
* :func:`proportional_fill` gives each slot ``min(cap, lam * share)``, with ``lam`` chosen so
  the total is the budget: proportional to ``share`` until a slot reaches its cap, the rest
  flowing to the others (seed 001's "in proportion to the relative distance, none past target").

Both never give more than a slot's gap (cap) and never more than the budget in total.
"""

from __future__ import annotations

import numpy as np

from rebal.core.types import FloatArray


def level_fill(gap: FloatArray, budget: FloatArray) -> FloatArray:
    """Return the allocation of ``budget`` (N,) that closes the largest ``gap`` (N, K) first.

    Negative gaps count as zero. When the budget covers every gap, every gap is closed and the
    remainder is left for the caller.
    """
    g = np.maximum(gap, 0.0)
    order = np.sort(g, axis=1)[:, ::-1]  # descending per account
    k = np.arange(1, g.shape[1] + 1, dtype=np.float64)
    csum = np.cumsum(order, axis=1)
    # Spending needed to bring the top k gaps down to the k-th gap.
    needed = csum - k * order
    b = np.maximum(budget, 0.0)[:, None]
    count = np.maximum((needed < b).sum(axis=1), 1)
    idx = count - 1
    rows = np.arange(g.shape[0])
    level = np.maximum((csum[rows, idx] - b[:, 0]) / count, 0.0)
    result: FloatArray = np.maximum(g - level[:, None], 0.0)
    return result


def proportional_fill(share: FloatArray, cap: FloatArray, budget: FloatArray) -> FloatArray:
    """Return ``min(cap, lam * share)`` per slot with ``lam`` spending ``budget`` (N,) in full.

    Slots with a non-positive share or cap get nothing. If the budget exceeds the sum of the
    caps, every slot gets its cap.
    """
    s = np.where((share > 0) & (cap > 0), share, 0.0)
    c = np.where(s > 0, cap, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(s > 0, c / s, np.inf)  # lam at which a slot saturates
    order = np.argsort(ratio, axis=1)
    r = np.take_along_axis(ratio, order, axis=1)
    cs = np.take_along_axis(c, order, axis=1)
    ss = np.take_along_axis(s, order, axis=1)
    # With lam = r[j], slots 0..j are saturated: spent = sum(c[:j+1]) + r[j] * sum(s[j+1:]).
    cap_before = np.cumsum(cs, axis=1)
    share_after = ss.sum(axis=1, keepdims=True) - np.cumsum(ss, axis=1)
    with np.errstate(invalid="ignore"):
        spent_at = np.where(np.isfinite(r), cap_before + r * share_after, np.inf)
    b = np.maximum(budget, 0.0)
    saturated = (spent_at <= b[:, None]).sum(axis=1)  # slots filled to their cap
    rows = np.arange(s.shape[0])
    idx = np.maximum(saturated - 1, 0)
    capped_sum = np.where(saturated > 0, cap_before[rows, idx], 0.0)
    free_share = np.where(saturated > 0, share_after[rows, idx], ss.sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = np.where(free_share > 0, (b - capped_sum) / free_share, np.inf)
    with np.errstate(invalid="ignore"):  # inf * 0 on slots with no share, masked below
        result: FloatArray = np.where(s > 0, np.minimum(c, lam[:, None] * s), 0.0)
    return result
