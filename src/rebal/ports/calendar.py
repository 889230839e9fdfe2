"""The market-calendar port: trading sessions, their open and close, early closes, holidays.

Every market time rebal uses comes through this port (the adapter reads ``exchange_calendars``);
no date or hour is written by hand anywhere else. A date the calendar does not cover raises
:class:`CalendarUnavailable`: a check that cannot know whether the market is open fails closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol


class CalendarUnavailable(LookupError):
    """The calendar has no answer for this date or instant (outside the range it covers)."""


@dataclass(frozen=True, slots=True)
class Session:
    """One trading session: its date and its open and close instants (UTC)."""

    day: date
    open: datetime
    close: datetime
    early_close: bool


class MarketCalendar(Protocol):
    """An exchange's trading sessions."""

    name: str

    def sessions(self, start: date, end: date) -> Sequence[Session]:
        """The sessions from ``start`` to ``end`` inclusive, in order."""
        ...

    def session(self, day: date) -> Session | None:
        """The session on ``day``, ``None`` when the market does not trade that day."""
        ...

    def is_open(self, at: datetime) -> bool:
        """Whether the market trades at instant ``at`` (the open minute trades, the close
        minute does not)."""
        ...

    def next_open(self, at: datetime) -> datetime:
        """The first open strictly after ``at``."""
        ...

    def next_close(self, at: datetime) -> datetime:
        """The first close strictly after ``at``."""
        ...

    def next_session(self, at: datetime) -> Session:
        """The session trading at ``at`` or, when the market is closed, the next one to open:
        the first session whose close is after ``at`` (a day order sent at ``at`` works in it)."""
        ...
