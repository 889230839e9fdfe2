"""When runs happen on the market's clock: the managed run's time in a session, and where a
scheduled run blocked by a day trade goes.

Pure functions over the sessions the calendar port gives (:class:`rebal.ports.calendar.Session`,
open and close as timezone-aware instants): nothing here reads a clock or names a date or an hour
of the exchange. The constants are durations from the calendar's open and close:

* the firm's lead time: managed portfolios are rebalanced an hour and a half before the close
  (14:30 ET for the NYSE's 16:00 close) so that day orders fill before it; on an early-close day
  the run keeps the same lead time (11:30 ET for a 13:00 close);
* the extended-hours sessions of US equities around a trading session: the pre-market from five
  and a half hours before the open (04:00 ET for the 09:30 open) and the after-hours to four
  hours after the close (20:00 ET for the 16:00 close; 17:00 ET on an early close at 13:00, as
  the exchanges' late sessions end then). A day with no session has no extended hours either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from rebal.ports.calendar import Session

#: How long before a session's close the managed run starts.
MANAGED_RUN_LEAD: Final = timedelta(hours=1, minutes=30)
#: How long before a session's open its pre-market starts (04:00 ET for a 09:30 open).
PRE_MARKET: Final = timedelta(hours=5, minutes=30)
#: How long after a session's close its after-hours session ends (20:00 ET for a 16:00 close).
AFTER_HOURS: Final = timedelta(hours=4)


@dataclass(frozen=True, slots=True)
class Window:
    """A stretch of time in which an order may trade: ``start`` included, ``end`` excluded."""

    start: datetime
    end: datetime

    def holds(self, at: datetime) -> bool:
        """Whether ``at`` is in the window."""
        return self.start <= at < self.end


def extended_window(
    session: Session, before: timedelta = PRE_MARKET, after: timedelta = AFTER_HOURS
) -> Window:
    """The window an extended-hours order of ``session`` trades in: from ``before`` its open
    (the pre-market) to ``after`` its close (the after-hours), the regular session between."""
    return Window(session.open - before, session.close + after)


class RunKind(StrEnum):
    """How a run came about: on the schedule, or asked for by the client there and then."""

    SCHEDULED = "scheduled"
    INSTANT = "instant"


def _aware(at: datetime, what: str) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"{what} {at} has no time zone: give a timezone-aware datetime")
    return at


def managed_run_at(close: datetime, lead: timedelta = MANAGED_RUN_LEAD) -> datetime:
    """The instant of a session's managed run: ``lead`` before its ``close`` (whatever time the
    close is, so an early close moves the run with it)."""
    return _aware(close, "close") - lead


def next_session_open(after: datetime, sessions: Sequence[Session]) -> datetime | None:
    """The open of the first session in ``sessions`` (in order) that opens strictly after
    ``after``; ``None`` when ``sessions`` has none (the caller's calendar does not reach it)."""
    _aware(after, "instant")
    return next((s.open for s in sessions if s.open > after), None)


def postponed_to(
    kind: RunKind, blocked_at: datetime, sessions: Sequence[Session]
) -> datetime | None:
    """Where a run blocked at ``blocked_at`` for a pattern day trade goes: a scheduled run to
    the open of the next session (the market's open from the calendar, 9:30 ET on the NYSE),
    an instant run nowhere (``None``: the client asks again). Raises ``LookupError`` when a
    scheduled run's next session is not in ``sessions``: a run is never silently dropped."""
    if kind is RunKind.INSTANT:
        return None
    opens = next_session_open(blocked_at, sessions)
    if opens is None:
        raise LookupError(f"no session after {blocked_at} in the calendar to postpone the run to")
    return opens
