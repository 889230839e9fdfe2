"""Conversions between the engine's numbers and the tax layer's.

The engine holds integer cents and micro-shares and float64 weights; `rebal.tax` works in exact
`Decimal`. These helpers cross that boundary in one place, so every step converts the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

import numpy as np
import pandas as pd

from rebal.core.types import BoolArray
from rebal.tax.lots import TaxLot
from rebal.tax.money import ZERO, share_of

_DIGITS = 12  # float weights become Decimal rounded to this many places


def cents_to_money(cents: int) -> Decimal:
    """Integer cents as dollars."""
    return Decimal(int(cents)).scaleb(-2)


def micro_to_shares(micro: int) -> Decimal:
    """Integer micro-shares as shares (normalised; exactly zero for none)."""
    return Decimal(int(micro)).scaleb(-6).normalize() if micro else ZERO


def weight_to_decimal(x: float) -> Decimal:
    """A float weight as a Decimal, rounded to a fixed number of places (stable plans)."""
    return Decimal(str(round(float(x), _DIGITS)))


def isin(values: np.ndarray, pool: Sequence[object] | np.ndarray) -> BoolArray:
    """Whether each of `values` is in `pool` (hashing: fast for strings, unlike np.isin)."""
    result: BoolArray = pd.Series(values).isin(set(pool)).to_numpy()
    return result


def piece(lot: TaxLot, quantity: Decimal) -> TaxLot:
    """The part `quantity` of `lot`, with its pro-rata basis (as `relieve_lots` splits it)."""
    return replace(
        lot, quantity=quantity, cost_basis=share_of(lot.cost_basis, quantity, lot.quantity)
    )
