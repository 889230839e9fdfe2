"""A one-account book for comparing one review of the lab with ``propose``."""

from __future__ import annotations

import numpy as np

from rebal.core.book import BookArrays


def one_account(
    quantity: np.ndarray,
    price: np.ndarray,
    target: np.ndarray,
    cash: int,
    flow: int,
    liquidate: bool = False,
) -> BookArrays:
    """A book of one account holding ``quantity`` micro-shares, fully in a model of ``target``,
    with ``cash`` and a pending ``flow`` in cents (``liquidate``: the flow withdraws all)."""
    k = len(price)
    return BookArrays(
        symbol=np.arange(k)[None, :],
        quantity_micro=quantity[None, :].astype(np.int64),
        price=price[None, :].astype(np.float64),
        target=target[None, :].astype(np.float64),
        overrides=None,
        restricted=np.zeros((1, k), dtype=bool),
        cash_cents=np.array([cash], dtype=np.int64),
        pending_cents=np.array([flow], dtype=np.int64),
        cash_target=np.zeros(1),
        cash_overrides=None,
        has_cash_target=np.zeros(1, dtype=bool),
        has_model=np.ones(1, dtype=bool),
        can_trade=np.ones(1, dtype=bool),
        liquidate=np.array([liquidate]),
    )
