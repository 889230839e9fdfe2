"""The market's clock for runs: the managed run an hour and a half before each session's close
(14:30 ET, 11:30 ET on a 13:00 early close), and a scheduled run blocked by a day trade moved to
the next session's open from the XNYS calendar, an instant run not rescheduled."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from rebal.adapters.calendars.exchange import ExchangeCalendar
from rebal.compliance.hours import RunKind, managed_run_at, postponed_to

CAL = ExchangeCalendar(start=date(2026, 6, 1), end=date(2027, 1, 31))
ET = CAL.timezone


def _session(day: date):  # type: ignore[no-untyped-def]
    session = CAL.session(day)
    assert session is not None
    return session


def test_managed_run_is_1430_et_before_a_regular_close() -> None:
    winter = managed_run_at(_session(date(2026, 12, 1)).close)
    summer = managed_run_at(_session(date(2026, 7, 1)).close)
    assert winter == datetime(2026, 12, 1, 19, 30, tzinfo=UTC)  # 14:30 EST
    assert summer == datetime(2026, 7, 1, 18, 30, tzinfo=UTC)  # 14:30 EDT
    assert summer.astimezone(ET).strftime("%H:%M %Z") == "14:30 EDT"


def test_managed_run_keeps_lead_time_on_early_close() -> None:
    friday = _session(date(2026, 11, 27))  # the day after Thanksgiving closes at 13:00
    assert friday.early_close
    run = managed_run_at(friday.close)
    assert run.astimezone(ET).strftime("%H:%M %Z") == "11:30 EST"
    assert friday.close - run == timedelta(hours=1, minutes=30)


def test_managed_run_refuses_a_close_without_zone() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        managed_run_at(datetime(2026, 12, 1, 16, 0))


def test_day_trade_postpones_scheduled_run_to_next_session_open() -> None:
    sessions = CAL.sessions(date(2026, 11, 20), date(2026, 12, 10))
    wednesday_run = managed_run_at(_session(date(2026, 11, 25)).close)
    # Thanksgiving (the 26th) does not trade: the next session is Friday's, at the 9:30 open.
    assert postponed_to(RunKind.SCHEDULED, wednesday_run, sessions) == datetime(
        2026, 11, 27, 14, 30, tzinfo=UTC
    )
    friday_run = managed_run_at(_session(date(2026, 11, 27)).close)
    monday = postponed_to(RunKind.SCHEDULED, friday_run, sessions)
    assert monday is not None
    assert monday.astimezone(ET).strftime("%Y-%m-%d %H:%M %Z") == "2026-11-30 09:30 EST"


def test_day_trade_blocked_instant_run_is_not_rescheduled() -> None:
    sessions = CAL.sessions(date(2026, 11, 20), date(2026, 12, 10))
    at = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
    assert postponed_to(RunKind.INSTANT, at, sessions) is None


def test_postponement_beyond_the_calendar_fails() -> None:
    sessions = CAL.sessions(date(2026, 11, 20), date(2026, 11, 27))
    with pytest.raises(LookupError, match="no session after"):
        postponed_to(RunKind.SCHEDULED, datetime(2026, 11, 27, 16, 30, tzinfo=UTC), sessions)
