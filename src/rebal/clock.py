"""The one place rebal reads the clock: entry points ask it for "now"; the core never does.

Trade dates are the exchange's dates: a US trade placed at 21:00 in New York on the 3rd is a
trade of the 3rd, whatever the machine's time zone says.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

EXCHANGE_TZ = ZoneInfo("America/New_York")


def trade_date_today() -> date:
    """Today's date on the exchange (New York)."""
    return datetime.now(EXCHANGE_TZ).date()


class SystemClock:
    """The machine's clock as the clock port (:class:`rebal.ports.clock.Clock`), for entry
    points to pass to what takes a clock (the store stamps its changes with it)."""

    def now(self) -> datetime:
        """The current instant, UTC."""
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        time.sleep(seconds)
