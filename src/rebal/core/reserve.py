"""The cash an account keeps aside, and the targets and cash band that leave room for it.

An account keeps in cash the larger of its model's ``CASH`` weight and the run's cash reserve
(``--cash-reserve``), as a share of its value after the pending flow. Drift, statuses and the
policies all measure against the same *reserve-adjusted* targets, so that an account already at
them is inside tolerance and one short of its reserve is not:

* Security targets: the model's weights scaled by ``(1 - kept) / (1 - cash weight)``, so they
  leave exactly the kept share for cash (a 60/40 model with a 10 % reserve: 54/36). Where the
  reserve does not exceed the model's cash weight the scale is 1: the model's weights unchanged.
* Cash band: where the model has a ``CASH`` row, the band of that row around the kept share;
  where it has none but the run keeps a reserve, only the lower edge of that band (the reserve is
  a floor: cash above it is not out of tolerance by itself, the underweight securities are);
  otherwise no band (seed 001: uninvested cash alone never breaches).

All weights are fractions; the kernels work on one account, :func:`reserve_targets` on a book.
"""

from __future__ import annotations

import numpy as np

from rebal.core.bands import around
from rebal.core.kernels import inline_kernel, kernel, maximum, nan_to_num
from rebal.core.types import FloatArray, dense_as


@inline_kernel
def kept_weight(cash_target: float, cash_reserve: float) -> float:
    """The share of its value an account keeps in cash."""
    return maximum(cash_target, cash_reserve)


@inline_kernel
def target_scale(cash_target: float, cash_reserve: float) -> float:
    """Factor on the model's security weights that leaves the kept share for cash."""
    if not cash_reserve > cash_target or not cash_target < 1.0:
        return 1.0
    return (1.0 - cash_reserve) / (1.0 - cash_target)


@inline_kernel
def kept_cents(total: float, pending_cents: int, cash_target: float, cash_reserve: float) -> int:
    """Cents an account keeps aside: the kept share of its value after the pending flow."""
    post_total = nan_to_num(total) + pending_cents / 100.0
    keep = kept_weight(cash_target, cash_reserve) * maximum(post_total, 0.0)
    return int(np.rint(keep * 100.0))


@inline_kernel
def cash_band(
    cash_target: float, has_cash_target: bool, cash_reserve: float, widths: tuple[float, float]
) -> tuple[float, float]:
    """The (low, high) edges of an account's cash weight; ``widths`` are the absolute and
    relative widths of the model's ``CASH`` row (or the run's band where the row sets none)."""
    kept = kept_weight(cash_target, cash_reserve)
    if not (has_cash_target or cash_reserve > 0):
        return 0.0, 1.0
    low, high = around(kept, widths[0], widths[1])
    return low, high if has_cash_target else 1.0


@kernel
def target_rows(
    start: int,
    stop: int,
    target: FloatArray,
    cash_target: FloatArray,
    cash_reserve: float,
    out: FloatArray,
) -> None:
    """The reserve-adjusted targets of accounts ``start:stop`` into ``out``."""
    for i in range(start, stop):
        scale = target_scale(cash_target[i], cash_reserve)
        for j in range(target.shape[1]):
            out[i, j] = target[i, j] * scale


def reserve_targets(target: FloatArray, cash_target: FloatArray, cash_reserve: float) -> FloatArray:
    """Return the reserve-adjusted targets (N, K) of the model weights ``target`` (N, K), for
    the models' cash weights ``cash_target`` (N,) and the run's ``cash_reserve``."""
    shape = np.shape(target)
    out: FloatArray = np.empty(shape)
    target_rows(
        0,
        shape[0],
        dense_as(target, np.float64, shape),
        dense_as(cash_target, np.float64, shape[:1]),
        float(cash_reserve),
        out,
    )
    return out
