"""Quotes held in memory: the prices of a book as imported, or set by a test."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from rebal.domain.account import Price
from rebal.domain.ids import Symbol


class InMemoryPrices:
    """A :class:`rebal.ports.prices.PriceSource` over a fixed list of quotes (several per symbol
    allowed: the latest at or before the asked time is given)."""

    def __init__(self, quotes: Iterable[Price] = ()) -> None:
        self._quotes: dict[Symbol, list[Price]] = {}
        for quote in quotes:
            self.add(quote)

    def add(self, quote: Price) -> None:
        """Record a quote."""
        history = self._quotes.setdefault(quote.symbol, [])
        history.append(quote)
        history.sort(key=lambda q: q.at)

    def quotes(self, symbols: Iterable[Symbol], at: datetime) -> Mapping[Symbol, Price]:
        """The latest quote at or before ``at`` of each known symbol."""
        found: dict[Symbol, Price] = {}
        for name in symbols:
            earlier = [q for q in self._quotes.get(name, ()) if q.at <= at]
            if earlier:
                found[name] = earlier[-1]
        return found
