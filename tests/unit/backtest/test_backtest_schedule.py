"""Review calendars, check intervals and look intervals."""

from __future__ import annotations

import numpy as np
import pytest

from rebal.backtest.schedule import ScheduleSpec, calendar_mask, every_n


def _days(start: str, end: str) -> np.ndarray:
    days = np.arange(np.datetime64(start), np.datetime64(end))
    return days[np.is_busday(days)]


def test_monthly_first_and_last_trading_day() -> None:
    dates = _days("2024-01-15", "2024-04-01")
    first = dates[calendar_mask(dates, "monthly", 1)]
    last = dates[calendar_mask(dates, "monthly", -1)]
    assert [str(d) for d in first] == ["2024-02-01", "2024-03-01"]
    assert [str(d) for d in last] == ["2024-01-31", "2024-02-29", "2024-03-29"]


def test_quarterly_and_annual_on_monthly_data() -> None:
    months = np.arange(np.datetime64("2000-01"), np.datetime64("2002-01")).astype("datetime64[D]")
    quarter_ends = months[calendar_mask(months, "quarterly", -1)]
    assert [str(d)[:7] for d in quarter_ends] == [
        "2000-03",
        "2000-06",
        "2000-09",
        "2000-12",
        "2001-03",
        "2001-06",
        "2001-09",
        "2001-12",
    ]
    assert [str(d)[:7] for d in months[calendar_mask(months, "annual", 1)]] == ["2001-01"]
    assert calendar_mask(months, "semi-annual", 1).sum() == 3  # 2000-07, 2001-01, 2001-07


def test_weekly_reviews_start_on_the_first_trading_day_of_the_week() -> None:
    dates = _days("2024-01-01", "2024-01-22")  # Monday 1st .. Friday 19th
    assert [str(d) for d in dates[calendar_mask(dates, "weekly", 1)]] == [
        "2024-01-08",
        "2024-01-15",
    ]


def test_observation_zero_is_never_a_review() -> None:
    dates = _days("2024-01-01", "2024-03-01")
    for spec in (ScheduleSpec("daily"), ScheduleSpec("monthly"), ScheduleSpec(look=1)):
        assert not spec.mask(dates)[0]
    assert ScheduleSpec("daily").mask(dates)[1:].all()


def test_look_interval_counts_observations() -> None:
    assert np.flatnonzero(every_n(12, 5)).tolist() == [5, 10]


def test_a_day_beyond_the_period_clamps_to_its_last_observation() -> None:
    dates = _days("2024-01-01", "2024-01-13")  # two weeks of five days
    assert [str(d) for d in dates[calendar_mask(dates, "weekly", 7)]] == [
        "2024-01-05",
        "2024-01-12",
    ]


def test_bad_schedules_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown frequency"):
        ScheduleSpec("fortnightly")
    with pytest.raises(ValueError, match="day counts from 1"):
        ScheduleSpec("monthly", day=0)
