"""Facts for the compliance tests: a funded account that may trade, an open market with fresh
quotes, and orders built in one line. Each test changes only the fact its rule reads."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import count

from rebal.compliance.facts import AccountFacts, Limits, MarketFacts
from rebal.domain.account import Price
from rebal.domain.ids import AccountId, ClientOrderId, Symbol
from rebal.domain.money import Money, Quantity
from rebal.domain.order import Order, OrderState, Side
from rebal.tax.wash_sales import WashGuard

NOW = datetime(2026, 12, 1, 19, 30, tzinfo=UTC)  # 14:30 ET, a Tuesday
TODAY = date(2026, 12, 1)
ACCOUNT = AccountId("A1")
_ids = count(1)

PRICES = {"VTI": "250.00", "BND": "72.50", "GOOG": "170.00", "GOOGL": "169.00", "TSLA": "400.00"}


def price(symbol: str, value: str, at: datetime = NOW - timedelta(minutes=1)) -> Price:
    return Price(symbol=Symbol(symbol), price=Decimal(value), at=at)


def market(**changes: object) -> MarketFacts:
    base = MarketFacts(
        now=NOW,
        market_open=True,
        prices={Symbol(s): price(s, p) for s, p in PRICES.items()},
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def account(**changes: object) -> AccountFacts:
    base = AccountFacts(
        account=ACCOUNT,
        household="H1",
        can_trade=True,
        cash=Money(Decimal("10000.00")),
        buying_power=Money(Decimal("10000.00")),
        positions={
            Symbol("VTI"): Quantity(Decimal("100")),
            Symbol("BND"): Quantity(Decimal("200")),
        },
        day_orders=(),
        wash_guard=WashGuard.from_history([], TODAY),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def buy(symbol: str, notional: str, **changes: object) -> Order:
    return Order(
        client_order_id=ClientOrderId(f"c{next(_ids)}"),
        account=ACCOUNT,
        symbol=Symbol(symbol),
        side=Side.BUY,
        notional=Money(Decimal(notional)),
        **changes,  # type: ignore[arg-type]
    )


def sell(symbol: str, quantity: str, **changes: object) -> Order:
    return Order(
        client_order_id=ClientOrderId(f"c{next(_ids)}"),
        account=ACCOUNT,
        symbol=Symbol(symbol),
        side=Side.SELL,
        quantity=Quantity(Decimal(quantity)),
        **changes,  # type: ignore[arg-type]
    )


def earlier(
    order: Order, state: OrderState = OrderState.FILLED, at: datetime = NOW - timedelta(hours=1)
) -> Order:
    """``order`` as an earlier run of the day left it."""
    filled = order.quantity if order.quantity is not None else Decimal(1)
    return replace(
        order,
        state=state,
        submitted_at=at,
        filled_quantity=Quantity(filled if state is OrderState.FILLED else Decimal(0)),
    )


LIMITS = Limits()
