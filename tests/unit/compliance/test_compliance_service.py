"""The compliance use case on real parts: the simulated broker on SQLite, the XNYS calendar and
quotes in memory. Facts come from the ports; a port that cannot answer blocks; a scheduled run
blocked by a day trade against an earlier run's order goes to the next session's open."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from rebal.adapters.brokers.simulated import SimulatedBroker, SimulatorSettings
from rebal.adapters.calendars.exchange import ExchangeCalendar
from rebal.adapters.memory.clock import SimulatedClock
from rebal.adapters.memory.prices import InMemoryPrices
from rebal.compliance.codes import Code
from rebal.compliance.facts import Limits
from rebal.compliance.hours import RunKind
from rebal.domain.account import Account, Price
from rebal.domain.ids import AccountId, ClientOrderId, HouseholdId, Symbol
from rebal.domain.money import Money, Quantity
from rebal.domain.order import Order, Side
from rebal.services.compliance import Decision, Household, Ports, check_orders

ET = ZoneInfo("America/New_York")
TUESDAY = datetime(2026, 11, 24, 10, 0, tzinfo=ET)
CALENDAR = ExchangeCalendar(start=date(2026, 11, 1), end=date(2026, 12, 31))
ACCOUNT = Account(
    id=AccountId("ACC-1"), model=None, cash=Money(Decimal("0.00")), household=HouseholdId("H1")
)
NO_HISTORY = Household(history=[])


class Market:
    def __init__(self, url: str) -> None:
        self.clock = SimulatedClock(TUESDAY)
        self.prices = InMemoryPrices()
        self.broker = SimulatedBroker(
            url,
            clock=self.clock,
            prices=self.prices,
            calendar=CALENDAR,
            settings=SimulatorSettings(),
        )
        self.ports = Ports(calendar=CALENDAR, broker=self.broker, prices=self.prices)
        self.count = 0

    def quote(self, symbol: str, price: str) -> None:
        self.prices.add(Price(symbol=Symbol(symbol), price=Decimal(price), at=self.clock.now()))

    def order(self, side: Side, symbol: str, size: str) -> Order:
        self.count += 1
        amount = Decimal(size)
        return Order(
            client_order_id=ClientOrderId(f"run-{self.count}"),
            account=ACCOUNT.id,
            symbol=Symbol(symbol),
            side=side,
            quantity=Quantity(amount) if side is Side.SELL else None,
            notional=Money(amount) if side is Side.BUY else None,
        )

    def check(self, orders: list[Order], **more: object) -> Decision:
        args: dict[str, object] = {
            "account": ACCOUNT,
            "now": self.clock.now(),
            "ports": self.ports,
            "limits": Limits(),
            "household": NO_HISTORY,
        }
        args.update(more)
        return check_orders(orders, **args)  # type: ignore[arg-type]


@pytest.fixture
def market(tmp_path: Path) -> Iterator[Market]:
    m = Market(f"sqlite:///{tmp_path / 'sim.db'}")
    m.broker.open_account(
        ACCOUNT.id, Money(Decimal("10000.00")), {Symbol("VTI"): Quantity(Decimal("10"))}
    )
    m.quote("VTI", "250.00")
    m.quote("BND", "72.50")
    yield m
    m.broker.close()


def test_service_passes_a_clean_run_in_market_hours(market: Market) -> None:
    decision = market.check(
        [market.order(Side.SELL, "VTI", "2"), market.order(Side.BUY, "BND", "500.00")]
    )
    assert decision.report.passed, decision.report.violations


def test_pattern_day_trade_against_earlier_run_postpones_scheduled_run(market: Market) -> None:
    market.broker.submit(market.order(Side.BUY, "BND", "300.00"))  # the morning's run
    market.clock.advance(timedelta(hours=4, minutes=30))  # 14:30 ET, the managed run
    market.quote("BND", "72.60")
    decision = market.check([market.order(Side.SELL, "BND", "1")])
    assert decision.report.codes == {Code.PATTERN_DAY_TRADE}
    # Postponed to Wednesday's open, 9:30 ET from the calendar.
    assert decision.postponed_to == datetime(2026, 11, 25, 14, 30, tzinfo=UTC)
    instant = market.check([market.order(Side.SELL, "BND", "1")], kind=RunKind.INSTANT)
    assert instant.postponed_to is None
    # The next session, yesterday's buy is not a day trade.
    market.clock.advance(timedelta(days=1))
    market.quote("BND", "72.60")
    assert market.check([market.order(Side.SELL, "BND", "1")]).report.passed


def test_service_blocks_when_the_market_is_closed(market: Market) -> None:
    market.clock.advance(timedelta(hours=8))  # 18:00 ET
    market.quote("VTI", "250.00")
    decision = market.check([market.order(Side.SELL, "VTI", "1")])
    assert decision.report.codes == {Code.MARKET_CLOSED}


def test_service_fails_closed_without_a_broker_answer(market: Market) -> None:
    stranger = Account(id=AccountId("NOBODY"), model=None, cash=Money(Decimal("0.00")))
    order = Order(
        client_order_id=ClientOrderId("x-1"),
        account=stranger.id,
        symbol=Symbol("VTI"),
        side=Side.BUY,
        notional=Money(Decimal("10.00")),
    )
    decision = market.check([order], account=stranger)
    assert {Code.UNFUNDED, Code.INSUFFICIENT_BUYING_POWER} <= decision.report.codes


def test_service_fails_closed_outside_the_calendar(market: Market) -> None:
    narrow = ExchangeCalendar(start=date(2026, 12, 1), end=date(2026, 12, 31))
    ports = Ports(calendar=narrow, broker=market.broker, prices=market.prices)
    decision = market.check([market.order(Side.BUY, "BND", "10.00")], ports=ports)
    assert {Code.MARKET_CLOSED, Code.PATTERN_DAY_TRADE, Code.WASH_SALE} <= decision.report.codes
    assert decision.postponed_to is None
    assert "the run cannot be postponed" in decision.report.violations[-1].message


def test_account_record_restrictions_and_status_apply(market: Market) -> None:
    from dataclasses import replace

    frozen = replace(ACCOUNT, can_trade=False, restricted=frozenset({Symbol("BND")}))
    decision = market.check([market.order(Side.BUY, "BND", "10.00")], account=frozen)
    assert decision.report.codes == {Code.ACCOUNT_CANNOT_TRADE, Code.RESTRICTED_SECURITY}
