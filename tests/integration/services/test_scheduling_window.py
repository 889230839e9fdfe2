"""The scheduler's window comes from the calendar: the managed run time, early closes, holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np

from rebal.adapters.calendars.exchange import ExchangeCalendar
from rebal.services.scheduling import window_at

CAL = ExchangeCalendar(start=date(2026, 11, 1), end=date(2027, 1, 31))


def utc(text: str) -> np.datetime64:
    return np.datetime64(text, "s")


def test_the_window_opens_at_1430_new_york_and_lasts_to_the_close():
    w = window_at(datetime(2026, 12, 2, 19, 45, tzinfo=UTC), CAL)  # Wednesday 14:45 ET
    assert (w.window_at, w.window_end) == (utc("2026-12-02T19:30"), utc("2026-12-02T21:00"))
    assert w.next_window_at == utc("2026-12-03T19:30")
    assert w.in_window and w.market_open


def test_an_early_close_keeps_the_lead_time():
    w = window_at(datetime(2026, 11, 27, 14, 0, tzinfo=UTC), CAL)  # day after Thanksgiving
    assert w.window_at == utc("2026-11-27T16:30")  # 11:30 ET before the 13:00 close
    assert not w.in_window


def test_after_the_close_and_over_a_holiday_the_window_is_the_next_session():
    w = window_at(datetime(2026, 12, 24, 20, 0, tzinfo=UTC), CAL)  # Christmas Eve, after 13:00
    assert w.window_at == utc("2026-12-28T19:30")  # Monday: Friday is Christmas
    assert not w.market_open


def test_check_days_select_the_monitoring_windows():
    wednesday = datetime(2026, 12, 2, 19, 45, tzinfo=UTC)
    assert window_at(wednesday, CAL, check_days={0, 2, 4}).check_day
    assert not window_at(wednesday, CAL, check_days={1, 3}).check_day
