"""The simulated market's rules of execution, as pure functions: when an order may trade, at
what price, and how much a notional buys.

* **Hours** come from the calendar: an order trades from its session's open (included) to its
  close (excluded); an extended-hours order also before the open and after the close by the
  settings' margins (by default the pre-market and after-hours of
  :mod:`rebal.compliance.hours`, the window pre-trade compliance allows). A day order expires
  at the end of the session it was sent in (or, sent while the market is closed, the next one).
* **Price**: the quote at the fill's instant moved against the order by the slippage (buys pay
  more, sells get less) and rounded against it to the settings' decimals.
* **Amounts**: a fill moves exactly ``amount_of(quantity, price)`` of cash; a notional buy
  becomes the quantity ``notional / price`` rounded **down** to 9 decimals, so it never spends
  more than its notional.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from rebal.adapters.brokers.simulated.settings import SimulatorSettings
from rebal.compliance.hours import Window, extended_window
from rebal.domain.money import QUANTITY_STEP, Money, Quantity
from rebal.domain.order import OrderType, Side
from rebal.ports.calendar import MarketCalendar

_BPS = Decimal(10_000)


class Market:
    """Trading hours and prices of the simulated market."""

    def __init__(self, calendar: MarketCalendar, settings: SimulatorSettings) -> None:
        self.calendar = calendar
        self._slippage = Decimal(str(settings.slippage_bps)) / _BPS
        self._step = Decimal(1).scaleb(-settings.price_decimals)
        self._before = timedelta(minutes=settings.extended_hours.before_open_minutes)
        self._after = timedelta(minutes=settings.extended_hours.after_close_minutes)

    def window(self, at: datetime, extended: bool) -> Window:
        """The window trading at ``at`` or, when none is, the next one."""
        before, after = (self._before, self._after) if extended else (timedelta(0), timedelta(0))
        return extended_window(self.calendar.next_session(at - after), before, after)

    def fill_price(self, quote: Decimal, side: Side) -> Decimal:
        """``quote`` moved and rounded against the order."""
        if side is Side.BUY:
            return (quote * (1 + self._slippage)).quantize(self._step, rounding=ROUND_CEILING)
        return (quote * (1 - self._slippage)).quantize(self._step, rounding=ROUND_FLOOR)


def marketable(price: Decimal, side: Side, type_: OrderType, limit: Decimal | None) -> bool:
    """Whether a fill at ``price`` is at or better than the order's limit (always, at market)."""
    if type_ is OrderType.MARKET or limit is None:
        return True
    return price <= limit if side is Side.BUY else price >= limit


def notional_quantity(notional: Money, price: Decimal) -> Quantity:
    """The shares ``notional`` buys at ``price``, rounded down to 9 decimals."""
    return Quantity((notional / price).quantize(QUANTITY_STEP, rounding=ROUND_FLOOR))
