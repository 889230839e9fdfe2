"""A simulated market for the broker tests: a clock standing in an ordinary NYSE session, quotes
set by the test, the real exchange calendar, and the simulated broker (``make_sim`` in
``conftest.py`` puts it on the test's database)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from rebal.adapters.brokers.simulated import SimulatedBroker
from rebal.adapters.calendars.exchange import ExchangeCalendar
from rebal.adapters.memory.clock import SimulatedClock
from rebal.adapters.memory.prices import InMemoryPrices
from rebal.domain.account import Price
from rebal.domain.ids import AccountId, ClientOrderId, Symbol
from rebal.domain.money import Money, Quantity
from rebal.domain.order import Order, OrderType, Side, TimeInForce

ET = ZoneInfo("America/New_York")
#: Tuesday 2026-11-24, 10:00 in New York: an ordinary session (the early close is on Friday).
START = datetime(2026, 11, 24, 10, 0, tzinfo=ET)
CALENDAR = ExchangeCalendar.around(START, days_before=30, days_after=60)
ACCOUNT = AccountId("ACC-1")


def d(text: str) -> Decimal:
    return Decimal(text)


@dataclass
class Sim:
    """The simulated broker with the clock and quotes it reads."""

    broker: SimulatedBroker
    clock: SimulatedClock
    prices: InMemoryPrices
    counter: list[int] = field(default_factory=lambda: [0])

    def quote(self, symbol: str, price: str, at: datetime | None = None) -> None:
        """Quote ``symbol`` at ``price`` from ``at`` (now by default)."""
        self.prices.add(Price(symbol=Symbol(symbol), price=d(price), at=at or self.clock.now()))

    def open(self, cash: str = "10000.00", account: AccountId = ACCOUNT, **held: str) -> None:
        """Open an account with ``cash`` and shares (``VTI="10"``)."""
        positions = {Symbol(s): Quantity(d(q)) for s, q in held.items()}
        self.broker.open_account(account, Money(d(cash)), positions)

    def wait(self, seconds: float) -> None:
        self.clock.sleep(seconds)

    def at(self, when: datetime) -> None:
        """Move the clock forward to ``when``."""
        self.clock.advance(when - self.clock.now())

    def order(
        self,
        side: str,
        symbol: str,
        *,
        quantity: str | None = None,
        notional: str | None = None,
        limit: str | None = None,
        cid: str | None = None,
        account: AccountId = ACCOUNT,
        **more: Any,
    ) -> Order:
        """An order with a fresh client order id unless ``cid`` is given."""
        self.counter[0] += 1
        return Order(
            client_order_id=ClientOrderId(cid or f"run-1-{self.counter[0]:04d}"),
            account=account,
            symbol=Symbol(symbol),
            side=Side(side),
            quantity=None if quantity is None else Quantity(d(quantity)),
            notional=None if notional is None else Money(d(notional)),
            type=OrderType.LIMIT if limit else OrderType.MARKET,
            limit_price=None if limit is None else d(limit),
            time_in_force=more.pop("time_in_force", TimeInForce.DAY),
            **more,
        )


SimFactory = Callable[..., Sim]


def ledger_rows(sim: Sim, table: Any, *columns: str) -> list[tuple[Any, ...]]:
    """The rows of one of the ledger's tables (``columns`` of them, all by default), in the
    order of their primary key."""
    import sqlalchemy as sa

    picked = [table.c[c] for c in columns] if columns else [table]
    with sim.broker.engine.connect() as conn:
        rows = conn.execute(sa.select(*picked).order_by(*table.primary_key))
        return [tuple(r) for r in rows]
