"""Extended hours at the pre-trade check: an order flagged extended-hours trades from 04:00 to
20:00 ET on a trading session (derived from the XNYS calendar's open and close: 5 h 30 before
the open, 4 h after the close, so 17:00 ET after a 13:00 early close), a regular order only in
the regular session; outside its window each is MARKET_CLOSED, and an extended-hours order that
is not a limit order good for the day is EXTENDED_HOURS_LIMIT_ONLY. Both sides of each
boundary, to the microsecond."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from factbook import LIMITS, account, market, sell

from rebal.adapters.calendars.exchange import ExchangeCalendar
from rebal.adapters.memory.calendar import FixedCalendar
from rebal.adapters.memory.prices import InMemoryPrices
from rebal.compliance.codes import Code
from rebal.compliance.hours import AFTER_HOURS, PRE_MARKET, Window, extended_window
from rebal.compliance.rules import check
from rebal.domain.order import OrderType, TimeInForce
from rebal.ports.calendar import Session
from rebal.services.compliance import Ports, market_facts

CAL = ExchangeCalendar(start=date(2026, 11, 1), end=date(2026, 12, 31))
ET = CAL.timezone
TICK = timedelta(microseconds=1)


def et(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=ET)


def _limit_sell(extended: bool) -> Any:
    return sell(
        "VTI", "1", type=OrderType.LIMIT, limit_price=Decimal("249.00"), extended_hours=extended
    )


def _codes(at: datetime, extended: bool, calendar: Any = CAL) -> set[Code]:
    ports = Ports(calendar=calendar, broker=None, prices=InMemoryPrices())  # type: ignore[arg-type]
    facts = market_facts(ports, at, [])
    report = check(
        [_limit_sell(extended)],
        account(),
        market(now=at, market_open=facts.market_open, extended_hours=facts.extended_hours),
        LIMITS,
    )
    return set(report.codes) & {Code.MARKET_CLOSED, Code.EXTENDED_HOURS_LIMIT_ONLY}


def test_the_window_is_derived_from_the_sessions_open_and_close() -> None:
    tuesday = CAL.session(date(2026, 11, 24))
    assert tuesday is not None
    window = extended_window(tuesday)
    assert window == Window(et(24, 4), et(24, 20))
    assert (tuesday.open - window.start, window.end - tuesday.close) == (PRE_MARKET, AFTER_HOURS)


# (instant, tradeable by a regular order, tradeable by an extended-hours order)
BOUNDARIES = [
    (et(24, 4) - TICK, False, False),  # before the pre-market
    (et(24, 4), False, True),  # the pre-market opens
    (et(24, 9, 30) - TICK, False, True),
    (et(24, 9, 30), True, True),  # the regular open
    (et(24, 16) - TICK, True, True),
    (et(24, 16), False, True),  # the regular close: after-hours
    (et(24, 20) - TICK, False, True),
    (et(24, 20), False, False),  # the after-hours end
    (et(27, 13) - TICK, True, True),  # the day after Thanksgiving closes at 13:00
    (et(27, 13), False, True),
    (et(27, 17) - TICK, False, True),  # its after-hours end four hours later
    (et(27, 17), False, False),
    (et(27, 20) - TICK, False, False),  # not at the regular day's 20:00
    (et(26, 12), False, False),  # Thanksgiving: no session, no extended hours
    (et(28, 12), False, False),  # a Saturday
    (et(30, 4), False, True),  # Monday's pre-market, the session after a weekend
]


@pytest.mark.parametrize(("at", "regular", "extended"), BOUNDARIES, ids=lambda v: str(v))
def test_each_order_trades_only_in_its_window(at: datetime, regular: bool, extended: bool) -> None:
    assert _codes(at, extended=False) == (set() if regular else {Code.MARKET_CLOSED})
    assert _codes(at, extended=True) == (set() if extended else {Code.MARKET_CLOSED})


def test_outside_extended_hours_the_message_names_the_next_window() -> None:
    at = et(24, 21)
    ports = Ports(calendar=CAL, broker=None, prices=InMemoryPrices())  # type: ignore[arg-type]
    facts = market_facts(ports, at, [])
    report = check([_limit_sell(True)], account(), facts, LIMITS)
    (closed,) = [v.message for v in report.violations if v.code is Code.MARKET_CLOSED]
    assert closed == (
        "the market is closed at 2026-11-24T21:00:00-05:00, outside extended hours"
        " (the next are 2026-11-25T09:00:00+00:00 to 2026-11-26T01:00:00+00:00)"
    )


def test_extended_hours_unknown_blocks_the_extended_order_only() -> None:
    only = Session(day=date(2026, 11, 24), open=et(24, 9, 30), close=et(24, 16), early_close=False)
    calendar = FixedCalendar([only])
    # 23:00 ET: past the calendar's last close, its after-hours over; no next session known
    assert _codes(et(24, 23), extended=True, calendar=calendar) == {Code.MARKET_CLOSED}
    facts = market_facts(
        Ports(calendar=calendar, broker=None, prices=InMemoryPrices()),  # type: ignore[arg-type]
        et(24, 23),
        [],
    )
    assert facts.extended_hours is None
    report = check([_limit_sell(True)], account(), facts, LIMITS)
    assert "extended hours unknown" in report.violations[0].message


def test_a_mixed_run_needs_the_regular_session_for_its_regular_orders() -> None:
    after = et(24, 17)
    orders = [_limit_sell(True), sell("BND", "1")]
    report = check(
        orders, account(), market(now=after, market_open=False, extended_hours=None), LIMITS
    )
    messages = [v.message for v in report.violations if v.code is Code.MARKET_CLOSED]
    assert messages == [
        "the market is closed at 2026-11-24T17:00:00-05:00",
        "no market calendar for 2026-11-24T17:00:00-05:00: extended hours unknown",
    ]


@pytest.mark.parametrize(
    "changes",
    [
        {"extended_hours": True},  # a market order
        {
            "extended_hours": True,
            "type": OrderType.LIMIT,
            "limit_price": Decimal("249.00"),
            "time_in_force": TimeInForce.GTC,
        },
    ],
)
def test_an_extended_hours_order_must_be_a_day_limit(changes: dict[str, Any]) -> None:
    order = sell("VTI", "1", **changes)
    window = Window(et(1, 4, month=12), et(1, 20, month=12))  # around the factbook's NOW
    report = check([order], account(), market(extended_hours=window), LIMITS)
    assert report.codes == {Code.EXTENDED_HOURS_LIMIT_ONLY}
    (violation,) = report.violations
    assert violation.order == order.client_order_id
    assert violation.message.startswith("sell of VTI is flagged extended-hours but is not a limit")


def test_a_regular_market_order_is_not_held_to_the_limit_rule() -> None:
    report = check([sell("VTI", "1")], account(), market(), LIMITS)
    assert report.passed
