"""The one place rebal reads the clock: entry points ask it for "now"; the core never does.

Trade dates are the exchange's dates: a US trade placed at 21:00 in New York on the 3rd is a
trade of the 3rd, whatever the machine's time zone says.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

EXCHANGE_TZ = ZoneInfo("America/New_York")


def trade_date_today() -> date:
    """Today's date on the exchange (New York)."""
    return datetime.now(EXCHANGE_TZ).date()
