"""An exchange's trading sessions from ``exchange_calendars`` (XNYS, the New York Stock Exchange,
by default), as a :class:`rebal.ports.calendar.MarketCalendar`.

Every session, holiday and early close comes from the library; nothing here names a date or an
hour. The library's default bounds depend on today's date, so this adapter always passes explicit
ones (:meth:`ExchangeCalendar.around` derives them from a run's as-of instant): the same call gives
the same answer on any day, and an instant or date outside the bounds raises
:class:`~rebal.ports.calendar.CalendarUnavailable` rather than guessing. Session dates are the
exchange's local dates (America/New_York for XNYS); instants are timezone-aware UTC, and a naive
instant is refused (the library would read it as UTC without saying so).
"""

from __future__ import annotations

import warnings
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import exchange_calendars as xcals

from rebal.ports.calendar import CalendarUnavailable, Session

#: The exchange rebal trades on unless told otherwise.
DEFAULT_EXCHANGE = "XNYS"
#: How far past ``end`` the library is asked, so that its range always holds a session.
_PAD = timedelta(days=7)


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"instant {at} has no time zone: give a timezone-aware datetime")
    return at.astimezone(UTC)


class ExchangeCalendar:
    """The sessions of exchange ``code`` from ``start`` to ``end`` (local dates, inclusive)."""

    def __init__(self, code: str = DEFAULT_EXCHANGE, *, start: date, end: date) -> None:
        if end < start:
            raise ValueError(f"calendar bounds {start} to {end}: the end is before the start")
        try:
            with warnings.catch_warnings():
                # exchange_calendars 4.13 reads Series.values, which pandas 3.1 deprecates;
                # the library's concern, not a user's.
                warnings.filterwarnings(
                    "ignore", "Series.values returning an ndarray", DeprecationWarning
                )
                # The library wants a range holding a session, its end after its start: ask a
                # week more (a range of one day, or of a weekend, is one), keep to ``end``.
                library = xcals.get_calendar(
                    code, start=start.isoformat(), end=(end + _PAD).isoformat()
                )
        except xcals.errors.InvalidCalendarName as exc:
            raise ValueError(f"no exchange calendar named {code!r}") from exc
        self.name = code
        self.timezone: ZoneInfo = library.tz
        schedule = library.schedule
        early = set(library.early_closes.date)
        self._sessions = [
            Session(
                day=day.date(),
                open=opened.to_pydatetime().astimezone(UTC),
                close=closed.to_pydatetime().astimezone(UTC),
                early_close=day.date() in early,
            )
            for day, opened, closed in zip(
                schedule.index, schedule["open"], schedule["close"], strict=True
            )
            if day.date() <= end
        ]
        self._days = [s.day for s in self._sessions]
        self._opens = [s.open for s in self._sessions]
        self._closes = [s.close for s in self._sessions]
        self._start = start
        self._end = end
        # The instants covered: from the first local midnight to the one after the last date.
        self._first = datetime.combine(start, time(), self.timezone).astimezone(UTC)
        self._last = datetime.combine(end + timedelta(days=1), time(), self.timezone).astimezone(
            UTC
        )

    @classmethod
    def around(
        cls,
        at: datetime,
        *,
        code: str = DEFAULT_EXCHANGE,
        days_before: int = 400,
        days_after: int = 400,
    ) -> ExchangeCalendar:
        """A calendar covering ``days_before`` days before and ``days_after`` days after the
        instant ``at`` (a run's as-of time): bounds that depend on the run, never on today."""
        local = _aware(at).date()
        return cls(
            code,
            start=local - timedelta(days=days_before),
            end=local + timedelta(days=days_after),
        )

    def __repr__(self) -> str:
        return f"ExchangeCalendar({self.name!r}, start={self._start}, end={self._end})"

    # -- coverage -----------------------------------------------------------------------------

    def _cover_day(self, day: date) -> None:
        if not self._start <= day <= self._end:
            raise CalendarUnavailable(
                f"the {self.name} calendar covers {self._start} to {self._end}, not {day}"
            )

    def _cover(self, at: datetime) -> datetime:
        at = _aware(at)
        if not self._first <= at < self._last:
            raise CalendarUnavailable(
                f"the {self.name} calendar covers {self._start} to {self._end}, not {at}"
            )
        return at

    def _after(self, index: int, at: datetime) -> int:
        if index >= len(self._sessions):
            raise CalendarUnavailable(
                f"the {self.name} calendar has no session after {at} (it ends {self._end})"
            )
        return index

    # -- the port -----------------------------------------------------------------------------

    def sessions(self, start: date, end: date) -> Sequence[Session]:
        """The sessions from ``start`` to ``end`` inclusive (local dates), in order."""
        self._cover_day(start)
        self._cover_day(end)
        return self._sessions[bisect_left(self._days, start) : bisect_right(self._days, end)]

    def session(self, day: date) -> Session | None:
        """The session on local date ``day``, ``None`` on a weekend or holiday."""
        self._cover_day(day)
        k = bisect_left(self._days, day)
        return self._sessions[k] if k < len(self._days) and self._days[k] == day else None

    def is_open(self, at: datetime) -> bool:
        """Whether the market trades at ``at``: from the open (included) to the close
        (excluded), to the microsecond."""
        at = self._cover(at)
        k = bisect_right(self._closes, at)
        return k < len(self._sessions) and self._opens[k] <= at

    def next_open(self, at: datetime) -> datetime:
        """The first open strictly after ``at``."""
        at = self._cover(at)
        return self._opens[self._after(bisect_right(self._opens, at), at)]

    def next_close(self, at: datetime) -> datetime:
        """The first close strictly after ``at``."""
        return self.next_session(at).close

    def next_session(self, at: datetime) -> Session:
        """The session trading at ``at`` or, when the market is closed, the next one to open:
        the first session whose close is after ``at``."""
        at = self._cover(at)
        return self._sessions[self._after(bisect_right(self._closes, at), at)]
