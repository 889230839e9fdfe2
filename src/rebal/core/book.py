"""A book of accounts as arrays: the shape every core function works on.

Each account has K position slots (K = the most securities any account holds or targets);
slot ``k`` of account ``i`` holds security ``symbol[i, k]`` (an index into the book's universe)
or is padding (``symbol == -1``). Quantities are integer micro-shares and money is integer
cents, so what is money stays exact; weights and prices are float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rebal.core.bands import BandParams
from rebal.core.kernels import kernel
from rebal.core.types import BoolArray, FloatArray, IntArray, dense_as


@kernel
def value_rows(
    start: int,
    stop: int,
    quantity_micro: IntArray,
    price: FloatArray,
    used: BoolArray,
    out: FloatArray,
) -> None:
    """Market value of the slots of accounts ``start:stop`` into ``out`` (``BookArrays.value``)."""
    for i in range(start, stop):
        for j in range(out.shape[1]):
            out[i, j] = quantity_micro[i, j] / 1e6 * price[i, j] if used[i, j] else 0.0


@dataclass(frozen=True, slots=True)
class BookArrays:
    """Accounts × slots arrays of a book, plus per-account flags (all aligned by row)."""

    symbol: IntArray  # (N, K) index into ``universe``; -1 for padding
    quantity_micro: IntArray  # (N, K) shares held x 10^6
    price: FloatArray  # (N, K) quoted price; NaN where the security has no price
    target: FloatArray  # (N, K) target weight (fraction); 0 outside the model
    overrides: BandParams | None  # (N, K) per-security band widths; None when the book has none
    restricted: BoolArray  # (N, K) never bought or sold in this account
    cash_cents: IntArray  # (N,) settled cash
    pending_cents: IntArray  # (N,) deposit (+) or withdrawal (-) not yet applied
    cash_target: FloatArray  # (N,) the model's CASH weight; 0 when it has none
    cash_overrides: BandParams | None  # (N, 1) widths of the models' CASH rows; None if none
    has_cash_target: BoolArray  # (N,) the model has a CASH row
    has_model: BoolArray  # (N,)
    can_trade: BoolArray  # (N,)
    liquidate: BoolArray  # (N,)

    @property
    def used(self) -> BoolArray:
        """Slots that hold or target a security."""
        result: BoolArray = self.symbol >= 0
        return result

    @property
    def value(self) -> FloatArray:
        """Market value per slot; NaN where a used slot has no price, 0 for padding."""
        shape = self.symbol.shape
        result: FloatArray = np.empty(shape)
        value_rows(0, shape[0], *self.holdings(), result)
        return result

    def holdings(self) -> tuple[IntArray, FloatArray, BoolArray]:
        """Quantities (micro-shares), prices and used slots as the dense, typed (N, K) arrays
        the kernels read."""
        shape = self.symbol.shape
        return (
            dense_as(self.quantity_micro, np.int64, shape),
            dense_as(self.price, np.float64, shape),
            dense_as(self.used, np.bool_, shape),
        )

    @property
    def n_accounts(self) -> int:
        """Number of accounts (rows)."""
        return int(self.symbol.shape[0])
