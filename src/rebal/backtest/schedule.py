"""When a backtest looks at the portfolio: calendar reviews, check intervals and cash-flow dates.

The core decides *whether* a drifted portfolio should trade and *where to*; this module decides
*when* it is asked. A schedule is a boolean mask over the T observations of a history:

* a calendar schedule (``monthly``, ``quarterly``, ...) is true on the ``day``-th observation of
  every period (``day=1`` the first, ``day=-1`` the last observation of the period present in the
  data), the way a calendar rebalance or a hybrid review happens;
* ``daily`` is true on every observation (a threshold checked at every price);
* a look interval of ``n`` is true on every ``n``-th observation (Daryanani's look interval in
  trading days, seed 001).

A cooldown pauses the reviews for a number of observations after each trade (seed 001 pauses the
monitoring of small portfolios for six months after a rebalance; Alpaca calls it cooldown days);
the engine applies it, since it depends on when the trades happen.

Observation 0 is the initial allocation and is never a review.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rebal.core.types import BoolArray, IntArray

FREQUENCIES = ("daily", "weekly", "monthly", "quarterly", "semi-annual", "annual")
_MONTHS_PER_PERIOD = {"monthly": 1, "quarterly": 3, "semi-annual": 6, "annual": 12}


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """A review schedule: a calendar ``frequency`` and ``day``, or every ``look`` observations.

    ``cooldown`` is how many observations after each trade are not reviewed (1: the next one).
    ``never`` is a schedule with no reviews (buy and hold, or cash-flow-only investing).
    """

    frequency: str = "daily"
    day: int = 1
    look: int | None = None
    cooldown: int = 0
    never: bool = False

    def __post_init__(self) -> None:
        if self.frequency not in FREQUENCIES:
            raise ValueError(
                f"unknown frequency {self.frequency!r}; choose one of {', '.join(FREQUENCIES)}"
            )
        if self.day == 0:
            raise ValueError("day counts from 1 (first observation) or -1 (last); 0 is invalid")
        if self.look is not None and self.look < 1:
            raise ValueError(f"a look interval is a positive number of observations: {self.look}")
        if self.cooldown < 0:
            raise ValueError(f"a cooldown is a number of observations >= 0: {self.cooldown}")

    def describe(self) -> str:
        """A short human label: ``quarterly`` or ``every 10 obs``."""
        if self.never:
            return "none"
        if self.look is not None:
            text = f"every {self.look} obs"
        elif self.frequency == "daily" or self.day == 1:
            text = self.frequency
        else:
            text = f"{self.frequency} day {self.day}"
        return text + (f" cooldown {self.cooldown}" if self.cooldown else "")

    def mask(self, dates: np.ndarray) -> BoolArray:
        """Return the review mask over ``dates`` (datetime64[D], increasing)."""
        n = len(dates)
        if self.never:
            return np.zeros(n, dtype=bool)
        if self.look is not None:
            return every_n(n, self.look)
        return calendar_mask(dates, self.frequency, self.day)


def period_keys(dates: np.ndarray, frequency: str) -> IntArray:
    """Return an integer per date that is equal exactly for dates in the same period."""
    days = dates.astype("datetime64[D]").astype(np.int64)
    if frequency == "daily":
        return days
    if frequency == "weekly":
        # 1970-01-01 was a Thursday: shifting by 3 days starts every week on a Monday.
        keys: IntArray = (days + 3) // 7
        return keys
    months = dates.astype("datetime64[M]").astype(np.int64)
    result: IntArray = months // _MONTHS_PER_PERIOD[frequency]
    return result


def calendar_mask(dates: np.ndarray, frequency: str, day: int = 1) -> BoolArray:
    """True on the ``day``-th observation (1-based; negative counts from the end) of each period.

    A period with fewer observations than ``|day|`` reviews on its last (or first) one.
    Observation 0 is excluded: it is the initial allocation.
    """
    n = len(dates)
    if frequency == "daily":  # every observation is a period of its own
        mask = np.ones(n, dtype=bool)
        mask[:1] = False
        return mask
    keys = period_keys(dates, frequency)
    new_period = np.r_[True, keys[1:] != keys[:-1]]
    starts = np.flatnonzero(new_period)
    sizes = np.diff(np.r_[starts, n])
    rank = day - 1 if day > 0 else sizes + day
    picked = starts + np.clip(rank, 0, sizes - 1)
    mask = np.zeros(n, dtype=bool)
    mask[picked] = True
    mask[0] = False
    return mask


def every_n(n: int, look: int) -> BoolArray:
    """True on observations ``look, 2*look, ...`` (a look interval counted from the start)."""
    mask = np.zeros(n, dtype=bool)
    mask[look::look] = True
    return mask
