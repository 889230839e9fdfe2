"""The scheduler's edge: the market's clock at one tick, read from the calendar port and handed
to the pure triggers (:mod:`rebal.core.triggers`) as a :class:`~rebal.core.triggers.Window`.

The run instant of a session is its managed run time (:func:`rebal.compliance.hours.
managed_run_at`: the close less the firm's lead, so an early close moves the run with it). The
window lasts from that instant to the close; after the close or on a day the market does not
trade, the window the triggers are told about is the next session's.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta

import numpy as np

from rebal.compliance.hours import managed_run_at
from rebal.core.triggers import Window
from rebal.ports.calendar import MarketCalendar

#: Monitoring windows for large accounts: every weekday (Monday is 0) unless configured.
EVERY_TRADING_DAY = frozenset(range(7))


def _instant(at: datetime) -> np.datetime64:
    return np.datetime64(at.astimezone(UTC).replace(tzinfo=None), "s")


def window_at(
    now: datetime, calendar: MarketCalendar, check_days: Collection[int] = EVERY_TRADING_DAY
) -> Window:
    """The scheduling window for a tick at ``now`` (timezone-aware). ``check_days`` are the
    weekdays (of the session's date) on which large accounts are checked, e.g. ``{0, 2, 4}``."""
    if now.tzinfo is None:
        raise ValueError(f"tick instant {now} has no time zone: give a timezone-aware datetime")
    session = calendar.next_session(now)  # trading at ``now``, or the next to open
    following = calendar.next_session(session.close + timedelta(seconds=1))
    return Window(
        now=_instant(now),
        window_at=_instant(managed_run_at(session.close)),
        window_end=_instant(session.close),
        next_window_at=_instant(managed_run_at(following.close)),
        market_open=calendar.is_open(now),
        check_day=session.day.weekday() in check_days,
    )
