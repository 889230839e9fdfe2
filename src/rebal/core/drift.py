"""Drift of every account against its target, as arrays over the whole book.

Weights are of total account value: securities plus settled cash (a pending deposit or
withdrawal is not in the account yet). Drift is ``weight - target`` in weight units; relative
drift is drift divided by target and is NaN where the target is zero (the position should not
be held at all, so a ratio means nothing; the absolute drift says how much is held).

Cash has a target only when the model has a ``CASH`` row; only then is it checked against a band
(seed 001: cash is not otherwise an asset class, so uninvested cash alone never breaches).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rebal.core.bands import Edges
from rebal.core.kernels import outside_rows
from rebal.core.types import BoolArray, FloatArray, any_per_row, dense


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
    cash_target: FloatArray  # (N,) 0 where the model has no cash row
    cash_breach: BoolArray  # (N,)
    priced: BoolArray  # (N,) every used slot has a price

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


def _outside(
    weight: FloatArray, low: FloatArray, high: FloatArray, checked: BoolArray
) -> BoolArray:
    """(N, K): checked slots outside ``[low, high]`` (:func:`rebal.core.kernels.outside`)."""
    shape = weight.shape
    result: BoolArray = outside_rows(
        dense(weight), dense(low, shape), dense(high, shape), dense(checked, shape)
    )
    return result


def measure_drift(
    value: FloatArray,
    cash: FloatArray,
    target: FloatArray,
    edges: Edges,
    used: BoolArray,
    *,
    cash_target: FloatArray | None = None,
    cash_edges: tuple[FloatArray, FloatArray] | None = None,
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
        The model's cash weight and its band ``(low, high)`` where the model has a cash row;
        accounts whose model has none pass ``cash_edges`` of ``(0, 1)``.
    """
    n = value.shape[0]
    missing = used & np.isnan(value)
    priced: BoolArray = ~any_per_row(missing)
    held = np.where(used, np.nan_to_num(value, nan=0.0), 0.0)
    total = np.where(priced, cash + held.sum(axis=1), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        safe_total = np.where(total > 0, total, np.nan)[:, None]
        weight = np.where(used, held / safe_total, 0.0)
        drift = weight - target
        relative = np.where(target > 0, drift / np.where(target > 0, target, 1.0), np.nan)
        cash_weight = cash / safe_total[:, 0]
    checked = used & (priced & (total > 0))[:, None]
    breach = _outside(weight, edges.band_low, edges.band_high, checked)
    wide = _outside(weight, edges.wide_low, edges.wide_high, checked)
    c_target = np.zeros(n) if cash_target is None else cash_target
    if cash_edges is None:
        cash_breach = np.zeros(n, dtype=bool)
    else:
        low, high = (np.reshape(edge, (-1, 1)) for edge in cash_edges)
        cash_breach = _outside(
            cash_weight[:, None], low, high, any_per_row(checked)[:, None]
        )[:, 0]
    return Drift(
        value=np.where(used, value, 0.0),
        cash=cash,
        total=total,
        weight=weight,
        target=target,
        drift=drift,
        relative=relative,
        edges=edges,
        checked=checked,
        breach=breach,
        wide_breach=wide,
        cash_weight=cash_weight,
        cash_target=c_target,
        cash_breach=cash_breach,
        priced=priced,
    )
