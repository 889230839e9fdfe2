"""A simulated clock: it stands still until told to move, and :meth:`SimulatedClock.sleep`
moves it instead of waiting, so a test (or the simulated market of ``rebal run --as-of``) runs
through hours of market time at once and always the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class SimulatedClock:
    """A :class:`rebal.ports.clock.Clock` that shows ``start`` until moved."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("a clock's time must be timezone-aware")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        """The simulated instant (UTC)."""
        return self._now

    def sleep(self, seconds: float) -> None:
        """Move forward by ``seconds`` at once."""
        self.advance(timedelta(seconds=seconds))

    def advance(self, by: timedelta) -> None:
        """Move forward by ``by`` (never back)."""
        if by < timedelta(0):
            raise ValueError("a clock does not go back")
        self._now += by
