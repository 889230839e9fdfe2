"""The price-source port: the latest quoted price of each security, with the time it was quoted."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Protocol

from rebal.domain.account import Price
from rebal.domain.ids import Symbol


class PriceSource(Protocol):
    """Quotes for securities."""

    def quotes(self, symbols: Iterable[Symbol], at: datetime) -> Mapping[Symbol, Price]:
        """The latest quote at or before ``at`` of each symbol it knows; unknown symbols are
        absent (a caller treats a missing quote as a missing fact, never as a price)."""
        ...
