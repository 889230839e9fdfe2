"""The clock port: what time it is, and waiting.

Only entry points and use cases read the clock; the core takes ``now`` as an argument. A
simulated clock (tests, the simulated broker's market) advances on :meth:`Clock.sleep` without
waiting.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    """A source of timezone-aware UTC instants."""

    def now(self) -> datetime:
        """The current instant, timezone-aware (UTC)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a simulated clock moves forward by that much instead)."""
        ...
