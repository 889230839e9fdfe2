"""Drift of every account against its target, as arrays over the whole book.

Weights are of total account value: securities plus settled cash (a pending deposit or
withdrawal is not in the account yet). Drift is ``weight - target`` in weight units; relative
drift is drift divided by target and is NaN where the target is zero (the position should not
be held at all, so a ratio means nothing; the absolute drift says how much is held).

Targets are the reserve-adjusted ones of :mod:`rebal.core.reserve` (the model's weights where the
run keeps no reserve beyond the model's cash weight). Cash is checked against a band only when the
model has a ``CASH`` row, and against the floor of the run's cash reserve when one is kept (seed
001: cash is not otherwise an asset class, so uninvested cash alone never breaches).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rebal.core.bands import Edges
from rebal.core.kernels import kernel, nan_to_num, outside, row_sum
from rebal.core.types import BoolArray, FloatArray, any_per_row, dense, dense_as


@dataclass(frozen=True, slots=True)
class Drift:
    """The measured state of a book: values, weights, drift and which bands are breached."""

    value: FloatArray  # (N, K) market value per slot; 0 for empty slots, NaN without a price
    cash: FloatArray  # (N,)
    total: FloatArray  # (N,) securities + cash; NaN when a slot has no price
    weight: FloatArray  # (N, K)
    target: FloatArray  # (N, K)
    drift: FloatArray  # (N, K) weight - target
    relative: FloatArray  # (N, K) drift / target, NaN where target is 0
    edges: Edges
    checked: BoolArray  # (N, K) slots that count (used slots of a checkable account)
    breach: BoolArray  # (N, K) outside the tolerance band
    wide_breach: BoolArray  # (N, K) outside the wide (tiered) band
    cash_weight: FloatArray  # (N,)
    cash_target: FloatArray  # (N,) the kept share: model cash weight or reserve; 0 for neither
    cash_breach: BoolArray  # (N,)
    priced: BoolArray  # (N,) every used slot has a price
    cash_low: FloatArray  # (N,) edges of the cash band (0 and 1 where cash has none)
    cash_high: FloatArray  # (N,)
    cash_short: BoolArray  # (N,) cash below the floor of the run's reserve (a cash breach)

    @property
    def any_breach(self) -> BoolArray:
        """Accounts with at least one security (or a cash target) outside its band."""
        result: BoolArray = any_per_row(self.breach) | self.cash_breach
        return result

    @property
    def any_wide_breach(self) -> BoolArray:
        """Accounts with at least one security outside its wide band."""
        result: BoolArray = any_per_row(self.wide_breach)
        return result


@kernel
def drift_rows(
    start: int,
    stop: int,
    value: FloatArray,
    cash: FloatArray,
    target: FloatArray,
    edges: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
    used: BoolArray,
    cash_edges: tuple[FloatArray, FloatArray, BoolArray],
    slots_out: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
    masks_out: tuple[BoolArray, BoolArray, BoolArray],
    account_out: tuple[FloatArray, FloatArray, BoolArray, BoolArray, BoolArray],
) -> None:
    """The drift of accounts ``start:stop``, one pass each: ``edges`` are the band and wide-band
    (low, high) per slot, ``cash_edges`` the cash band per account and whether its low edge is
    the run's reserve, ``slots_out`` value, weight, drift and relative drift, ``masks_out``
    checked, breach and wide breach, ``account_out`` total, cash weight, cash breach, priced and
    cash short of the reserve."""
    band_low, band_high, wide_low, wide_high = edges
    cash_low, cash_high, reserve_floor = cash_edges
    value_out, weight, drift, relative = slots_out
    checked, breach, wide = masks_out
    total_out, cash_weight, cash_breach, priced_out, cash_short = account_out
    k = value.shape[1]
    held = np.empty(k)
    for i in range(start, stop):
        priced = True
        for j in range(k):
            priced &= not (used[i, j] and np.isnan(value[i, j]))
            held[j] = nan_to_num(value[i, j]) if used[i, j] else 0.0
        total = cash[i] + row_sum(held) if priced else np.nan
        safe_total = total if total > 0 else np.nan
        check = priced and total > 0
        for j in range(k):
            t = target[i, j]
            w = held[j] / safe_total if used[i, j] else 0.0
            weight[i, j] = w
            drift[i, j] = w - t
            relative[i, j] = (w - t) / t if t > 0 else np.nan
            checked[i, j] = used[i, j] and check
            breach[i, j] = checked[i, j] and outside(w, band_low[i, j], band_high[i, j])
            wide[i, j] = checked[i, j] and outside(w, wide_low[i, j], wide_high[i, j])
            value_out[i, j] = value[i, j] if used[i, j] else 0.0
        total_out[i] = total
        priced_out[i] = priced
        cash_weight[i] = cash[i] / safe_total
        any_checked = check and np.any(used[i])
        cash_breach[i] = any_checked and outside(cash_weight[i], cash_low[i], cash_high[i])
        cash_short[i] = cash_breach[i] and reserve_floor[i] and cash_weight[i] < cash_low[i]


def measure_drift(
    value: FloatArray,
    cash: FloatArray,
    target: FloatArray,
    edges: Edges,
    used: BoolArray,
    *,
    cash_target: FloatArray | None = None,
    cash_edges: tuple[FloatArray, FloatArray] | None = None,
    reserve_floor: BoolArray | None = None,
) -> Drift:
    """Return the drift of every slot of every account.

    Parameters
    ----------
    value
        Market value per slot, (N, K); NaN where the security has no price.
    cash
        Settled cash per account, (N,).
    target
        Target weight per slot, (N, K); 0 for holdings outside the model.
    edges
        Band, rail and wide-band edges per slot, from :func:`rebal.core.bands.band_edges`.
    used
        Slots that hold or target a security; the rest is padding.
    cash_target, cash_edges
        The share each account keeps in cash and its band ``(low, high)`` (see
        :mod:`rebal.core.reserve`); accounts with neither a cash row nor a reserve pass
        ``cash_edges`` of ``(0, 1)``.
    reserve_floor
        Accounts whose cash band's low edge is the run's reserve (where cash below it is short
        of the reserve); none when not given.
    """
    n, k = value.shape
    low, high = (-np.inf, np.inf) if cash_edges is None else cash_edges  # none: never outside
    floor = np.zeros(n, dtype=bool) if reserve_floor is None else reserve_floor
    drift = Drift(
        value=np.empty((n, k)),
        cash=cash,
        total=np.empty(n),
        weight=np.empty((n, k)),
        target=target,
        drift=np.empty((n, k)),
        relative=np.empty((n, k)),
        edges=edges,
        checked=np.empty((n, k), dtype=bool),
        breach=np.empty((n, k), dtype=bool),
        wide_breach=np.empty((n, k), dtype=bool),
        cash_weight=np.empty(n),
        cash_target=np.zeros(n) if cash_target is None else cash_target,
        cash_breach=np.empty(n, dtype=bool),
        priced=np.empty(n, dtype=bool),
        cash_low=dense_as(low, np.float64, (n,)).copy(),
        cash_high=dense_as(high, np.float64, (n,)).copy(),
        cash_short=np.empty(n, dtype=bool),
    )
    shape = (n, k)
    drift_rows(
        0,
        n,
        dense(value),
        dense_as(cash, np.float64, (n,)),
        dense(target, shape),
        (
            dense(edges.band_low, shape),
            dense(edges.band_high, shape),
            dense(edges.wide_low, shape),
            dense(edges.wide_high, shape),
        ),
        dense(used, shape),
        (
            drift.cash_low,
            drift.cash_high,
            dense_as(floor, np.bool_, (n,)),
        ),
        (drift.value, drift.weight, drift.drift, drift.relative),
        (drift.checked, drift.breach, drift.wide_breach),
        (drift.total, drift.cash_weight, drift.cash_breach, drift.priced, drift.cash_short),
    )
    return drift
