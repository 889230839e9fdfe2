"""The order terms of a run: the type, limit offset, extended hours and execution algorithm that
every order of the run carries.

``rebal run --order-type market|limit --limit-offset-bps N --extended-hours --algo twap|vwap
--algo-window MINUTES --algo-slices N`` sets them; they are kept in the run's proposal settings
(its canonical JSON config, with the keys of :meth:`OrderTerms.options`), so a resume trades
with the same terms as the start. Every order is good for the day (the broker cancels what is
unfilled at the close).

A limit price is derived from the quote at the start of the order's leg: a sell at
``quote × (1 − offset)``, a buy at ``quote × (1 + offset)`` (offset = N / 10,000), rounded to
the cent in the side's favour: a sell's limit up, a buy's down, so the rounding never makes the
price worse for the account than the exact offset. A negative offset places the limit beyond
the quote (a passive order that may not fill). The broker takes an amount-in-money order only at
market, so with limit orders every buy is in shares: the amount divided by the limit price,
rounded down (to whole shares in a whole-share run), so it never costs more than the amount.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Final

from rebal.domain.money import CENT
from rebal.domain.order import OrderType, Side

_BPS: Final = Decimal(10_000)


class Algo(StrEnum):
    """How a parent order is sliced over its window (rebal.services.slicing)."""

    TWAP = "twap"
    VWAP = "vwap"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderTerms:
    """What every order of a run carries; ``ValueError`` (naming the option) for bad terms."""

    type: OrderType = OrderType.MARKET
    limit_offset_bps: Decimal = Decimal(0)
    extended_hours: bool = False
    algo: Algo | None = None
    algo_window_minutes: int = 0
    algo_slices: int = 0

    def __post_init__(self) -> None:
        if not -_BPS < self.limit_offset_bps < _BPS:
            raise ValueError(
                f"--limit-offset-bps must be between -10000 and 10000, not {self.limit_offset_bps}"
            )
        if self.limit_offset_bps and self.type is not OrderType.LIMIT:
            raise ValueError("--limit-offset-bps needs --order-type limit")
        if self.extended_hours and self.type is not OrderType.LIMIT:
            raise ValueError(
                "--extended-hours needs --order-type limit (the broker takes extended-hours "
                "orders only as limit orders good for the day)"
            )
        if self.algo is None:
            if self.algo_window_minutes or self.algo_slices:
                raise ValueError("--algo-window and --algo-slices need --algo twap|vwap")
            return
        if not 0 < self.algo_window_minutes <= 24 * 60:
            raise ValueError(
                f"--algo-window must be 1 to 1440 minutes, not {self.algo_window_minutes}"
            )
        if not 0 < self.algo_slices <= 1000:
            raise ValueError(f"--algo-slices must be 1 to 1000, not {self.algo_slices}")

    def options(self) -> dict[str, Any]:
        """The terms as the run's config keeps them."""
        return {
            "order_type": self.type.value,
            "limit_offset_bps": str(self.limit_offset_bps),
            "extended_hours": self.extended_hours,
            "algo": None if self.algo is None else self.algo.value,
            "algo_window_minutes": self.algo_window_minutes,
            "algo_slices": self.algo_slices,
        }

    @classmethod
    def of_config(cls, config: str | None) -> OrderTerms:
        """The terms kept in a run's config (the defaults for a run stored without them)."""
        kept = json.loads(config or "{}")
        try:
            algo = kept.get("algo")
            return cls(
                type=OrderType(kept.get("order_type", OrderType.MARKET.value)),
                limit_offset_bps=Decimal(str(kept.get("limit_offset_bps", "0"))),
                extended_hours=bool(kept.get("extended_hours", False)),
                algo=None if algo is None else Algo(algo),
                algo_window_minutes=int(kept.get("algo_window_minutes", 0)),
                algo_slices=int(kept.get("algo_slices", 0)),
            )
        except (InvalidOperation, TypeError) as exc:
            raise ValueError(f"the run's order terms cannot be read: {exc}") from None

    def limit_price(self, side: Side, quote: Decimal) -> Decimal | None:
        """The limit of an order of ``side`` from ``quote`` (``None`` at market); see the
        module's docstring for the rounding."""
        if self.type is OrderType.MARKET:
            return None
        offset = self.limit_offset_bps / _BPS
        if side is Side.SELL:
            price = (quote * (1 - offset)).quantize(CENT, rounding=ROUND_CEILING)
        else:
            price = (quote * (1 + offset)).quantize(CENT, rounding=ROUND_FLOOR)
        if price <= 0:
            raise ValueError(f"a limit of {price} from the quote {quote} is not a price")
        return price

    def fields(self, side: Side, quote: Decimal) -> dict[str, Any]:
        """The order fields these terms set for an order of ``side`` quoted ``quote``."""
        return {
            "type": self.type,
            "limit_price": self.limit_price(side, quote),
            "extended_hours": self.extended_hours,
        }
