"""The exchange calendar adapter against real NYSE dates: early closes, holidays, a change of
daylight saving time, and explicit bounds that fail closed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from rebal.adapters.calendars.exchange import ExchangeCalendar
from rebal.adapters.memory.calendar import FixedCalendar
from rebal.ports.calendar import CalendarUnavailable, MarketCalendar, Session

ET = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def nyse() -> ExchangeCalendar:
    return ExchangeCalendar(start=date(2026, 1, 1), end=date(2026, 12, 31))


def et(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=ET)  # type: ignore[misc]


def test_it_is_a_market_calendar(nyse: ExchangeCalendar) -> None:
    calendar: MarketCalendar = nyse
    assert calendar.name == "XNYS"


def test_the_day_after_thanksgiving_closes_at_one_in_new_york(nyse: ExchangeCalendar) -> None:
    session = nyse.session(date(2026, 11, 27))
    assert session is not None
    assert session.early_close
    assert session.open == et(2026, 11, 27, 9, 30)
    assert session.close == et(2026, 11, 27, 13, 0)
    assert session.close.tzinfo is UTC


def test_christmas_eve_closes_early_and_christmas_is_no_session(nyse: ExchangeCalendar) -> None:
    eve = nyse.session(date(2026, 12, 24))
    assert eve is not None and eve.early_close and eve.close == et(2026, 12, 24, 13, 0)
    assert nyse.session(date(2026, 12, 25)) is None
    assert nyse.session(date(2026, 11, 26)) is None  # Thanksgiving
    assert nyse.session(date(2026, 12, 26)) is None  # a Saturday


def test_an_ordinary_day_is_not_an_early_close(nyse: ExchangeCalendar) -> None:
    session = nyse.session(date(2026, 11, 25))
    assert session is not None and not session.early_close
    assert session.close == et(2026, 11, 25, 16, 0)


def test_the_open_stays_at_half_past_nine_in_new_york_across_daylight_saving(
    nyse: ExchangeCalendar,
) -> None:
    # Clocks went forward on Sunday 2026-03-08: the open moves an hour earlier in UTC.
    friday, monday = nyse.sessions(date(2026, 3, 6), date(2026, 3, 9))
    assert (friday.day, monday.day) == (date(2026, 3, 6), date(2026, 3, 9))
    assert friday.open == datetime(2026, 3, 6, 14, 30, tzinfo=UTC)
    assert monday.open == datetime(2026, 3, 9, 13, 30, tzinfo=UTC)
    assert friday.open.astimezone(ET).time() == monday.open.astimezone(ET).time()


def test_the_open_instant_trades_and_the_close_instant_does_not(nyse: ExchangeCalendar) -> None:
    session = nyse.session(date(2026, 11, 27))
    assert session is not None
    assert not nyse.is_open(session.open - timedelta(microseconds=1))
    assert nyse.is_open(session.open)
    assert nyse.is_open(session.close - timedelta(microseconds=1))
    assert not nyse.is_open(session.close)
    assert not nyse.is_open(et(2026, 12, 25, 12, 0))


def test_next_open_close_and_session_skip_the_holiday_and_the_weekend(
    nyse: ExchangeCalendar,
) -> None:
    after_eve = et(2026, 12, 24, 13, 0)
    assert nyse.next_open(after_eve) == et(2026, 12, 28, 9, 30)
    assert nyse.next_close(after_eve) == et(2026, 12, 28, 16, 0)
    assert nyse.next_session(after_eve).day == date(2026, 12, 28)
    during = et(2026, 12, 24, 10, 0)
    assert nyse.next_session(during).day == date(2026, 12, 24)
    assert nyse.next_close(during) == et(2026, 12, 24, 13, 0)
    before = et(2026, 12, 24, 8, 0)
    assert nyse.next_session(before).day == date(2026, 12, 24)
    assert nyse.next_open(before) == et(2026, 12, 24, 9, 30)


def test_sessions_lists_trading_days_only(nyse: ExchangeCalendar) -> None:
    days = [s.day for s in nyse.sessions(date(2026, 12, 21), date(2026, 12, 31))]
    assert days == [date(2026, 12, d) for d in (21, 22, 23, 24, 28, 29, 30, 31)]


def test_dates_and_instants_outside_the_bounds_raise(nyse: ExchangeCalendar) -> None:
    with pytest.raises(CalendarUnavailable, match="2027-01-04"):
        nyse.session(date(2027, 1, 4))
    with pytest.raises(CalendarUnavailable):
        nyse.sessions(date(2025, 12, 1), date(2026, 1, 10))
    with pytest.raises(CalendarUnavailable):
        nyse.is_open(et(2027, 1, 4, 10, 0))
    with pytest.raises(CalendarUnavailable, match="no session after"):
        nyse.next_open(et(2026, 12, 31, 12, 0))
    with pytest.raises(CalendarUnavailable):
        nyse.next_session(et(2026, 12, 31, 16, 0))


def test_a_naive_instant_is_refused(nyse: ExchangeCalendar) -> None:
    with pytest.raises(ValueError, match="time zone"):
        nyse.is_open(datetime(2026, 11, 27, 10, 0))


def test_bounds_around_an_instant_depend_on_it_not_on_today() -> None:
    at = et(2026, 11, 27, 12, 0)
    calendar = ExchangeCalendar.around(at, days_before=10, days_after=10)
    assert repr(calendar) == "ExchangeCalendar('XNYS', start=2026-11-17, end=2026-12-07)"
    assert calendar.is_open(at)
    with pytest.raises(CalendarUnavailable):
        calendar.session(date(2026, 12, 8))


def test_an_unknown_exchange_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="XNOPE"):
        ExchangeCalendar("XNOPE", start=date(2026, 1, 1), end=date(2026, 1, 31))


def test_the_fixed_calendar_finds_the_same_next_session(nyse: ExchangeCalendar) -> None:
    fixed = FixedCalendar(nyse.sessions(date(2026, 12, 21), date(2026, 12, 31)))
    for at in (et(2026, 12, 24, 8, 0), et(2026, 12, 24, 12, 0), et(2026, 12, 24, 13, 0)):
        assert fixed.next_session(at) == nyse.next_session(at)
        assert isinstance(fixed.next_session(at), Session)


def test_a_calendar_of_one_day_or_of_a_weekend_has_its_sessions_and_no_more() -> None:
    one = ExchangeCalendar(start=date(2026, 11, 20), end=date(2026, 11, 20))
    assert [s.day for s in one.sessions(date(2026, 11, 20), date(2026, 11, 20))] == [
        date(2026, 11, 20)
    ]
    weekend = ExchangeCalendar(start=date(2026, 11, 21), end=date(2026, 11, 22))
    assert list(weekend.sessions(date(2026, 11, 21), date(2026, 11, 22))) == []
    with pytest.raises(CalendarUnavailable):
        weekend.session(date(2026, 11, 23))  # the padding asked of the library is not covered
