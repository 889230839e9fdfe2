"""A price history of the lab: prices (T, K) of K symbols on T dates, and its periods.

Read from files by :mod:`rebal.io.price_history`: what runs on a history (the lab's simulation,
the backtest use case) takes it as data and imports no file code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from rebal.core.types import FloatArray


@dataclass(frozen=True, slots=True)
class PriceHistory:
    """Prices (T, K) of ``symbols`` on ``dates`` (datetime64[D], strictly increasing); NaN
    before a symbol's first price (nowhere else)."""

    dates: np.ndarray
    symbols: tuple[str, ...]
    prices: FloatArray
    source: str

    def first_prices(self) -> list[int]:
        """Per symbol, the observation of its first price (``len(dates)`` when it has none)."""
        priced = np.isfinite(self.prices)
        first = priced.argmax(axis=0)
        return [
            int(i) if col[i] else len(self.dates) for i, col in zip(first, priced.T, strict=True)
        ]

    def between(self, start: date | None, end: date | None) -> PriceHistory:
        """Return the observations dated within ``[start, end]``; without ``start``, from the
        first date on which every symbol has a price. A symbol without a price on ``start``
        is an error naming its first date."""
        firsts = self.first_prices()
        if start is None:
            lo = max(firsts)
            if lo >= len(self.dates):
                empty = [
                    s for s, i in zip(self.symbols, firsts, strict=True) if i >= len(self.dates)
                ]
                raise ValueError(f"{self.source}: no prices for {', '.join(empty)}")
        else:
            lo = int(np.searchsorted(self.dates, np.datetime64(start, "D")))
            late = [
                (s, i)
                for s, i in zip(self.symbols, firsts, strict=True)
                if lo < i < len(self.dates)
            ]
            if late:
                named = ", ".join(f"{s} from {self.dates[i]}" for s, i in late)
                raise ValueError(
                    f"{self.source}: no price on {start} for {named}; start on "
                    f"{self.dates[max(i for _, i in late)]} or later"
                )
        hi = (
            len(self.dates)
            if end is None
            else int(np.searchsorted(self.dates, np.datetime64(end, "D"), side="right"))
        )
        if hi - lo < 2:
            span = f"{start or 'the start'} to {end or 'the end'}"
            raise ValueError(
                f"{self.source}: fewer than two observations from {span} "
                f"(the data covers {self.dates[0]} to {self.dates[-1]})"
            )
        return PriceHistory(self.dates[lo:hi], self.symbols, self.prices[lo:hi], self.source)

    def select(self, symbols: list[str]) -> PriceHistory:
        """Return the columns ``symbols``, in that order; unknown names are an error."""
        missing = [s for s in symbols if s not in self.symbols]
        if missing:
            known = ", ".join(self.symbols)
            raise ValueError(f"{self.source}: no prices for {', '.join(missing)} (has {known})")
        idx = [self.symbols.index(s) for s in symbols]
        return PriceHistory(self.dates, tuple(symbols), self.prices[:, idx], self.source)
