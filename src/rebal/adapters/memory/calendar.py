"""A calendar of sessions given explicitly, for tests that need a market with a known shape
(an early close, a holiday) without an exchange's history. Production uses the exchange
calendar adapter; nothing here knows any real date."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime

from rebal.ports.calendar import CalendarUnavailable, Session


class FixedCalendar:
    """A :class:`rebal.ports.calendar.MarketCalendar` over ``sessions``; dates outside the
    first and last session raise :class:`CalendarUnavailable`."""

    def __init__(self, sessions: Iterable[Session], name: str = "fixed") -> None:
        self.name = name
        self._sessions = sorted(sessions, key=lambda s: s.day)
        if not self._sessions:
            raise ValueError("a calendar needs at least one session")
        self._by_day = {s.day: s for s in self._sessions}

    def _cover(self, day: date) -> None:
        if not self._sessions[0].day <= day <= self._sessions[-1].day:
            raise CalendarUnavailable(f"the {self.name} calendar does not cover {day}")

    def sessions(self, start: date, end: date) -> Sequence[Session]:
        """The sessions from ``start`` to ``end`` inclusive."""
        self._cover(start)
        self._cover(end)
        return [s for s in self._sessions if start <= s.day <= end]

    def session(self, day: date) -> Session | None:
        """The session on ``day``, if the market trades then."""
        self._cover(day)
        return self._by_day.get(day)

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` falls in a session, open minute included, close excluded."""
        self._cover(at.date())
        return any(s.open <= at < s.close for s in self._sessions)

    def next_open(self, at: datetime) -> datetime:
        """The first open after ``at``."""
        return self._first_after(at, [s.open for s in self._sessions])

    def next_close(self, at: datetime) -> datetime:
        """The first close after ``at``."""
        return self._first_after(at, [s.close for s in self._sessions])

    def next_session(self, at: datetime) -> Session:
        """The first session whose close is after ``at``."""
        close = self.next_close(at)
        return next(s for s in self._sessions if s.close == close)

    def _first_after(self, at: datetime, instants: list[datetime]) -> datetime:
        later = [t for t in instants if t > at]
        if not later:
            raise CalendarUnavailable(f"the {self.name} calendar ends before {at}")
        return later[0]
