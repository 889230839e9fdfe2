"""Whatever is sent, in whatever order, with whatever faults: no cash or position ever goes
negative, and the ledger's cash is the opening cash plus sells less buys, to the cent."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simmarket import START, Sim

from rebal.adapters.brokers.simulated import SimulatedBroker, SimulatorSettings
from rebal.adapters.calendars.exchange import ExchangeCalendar
from rebal.adapters.memory.clock import SimulatedClock
from rebal.adapters.memory.prices import InMemoryPrices
from rebal.domain.ids import AccountId, ClientOrderId, Symbol
from rebal.domain.money import amount_of
from rebal.domain.order import Side
from rebal.ports.broker import BrokerError

ACCOUNTS = {
    AccountId("A"): (Decimal("2500.00"), {Symbol("VTI"): Decimal(8), Symbol("BND"): Decimal(9)}),
    AccountId("B"): (Decimal("0.00"), {Symbol("VTI"): Decimal("3.25"), Symbol("BND"): Decimal(5)}),
}
SYMBOLS = [Symbol("VTI"), Symbol("BND")]
ZERO = Decimal(0)
CALENDAR = ExchangeCalendar.around(START, days_before=5, days_after=10)

accounts = st.sampled_from(sorted(ACCOUNTS))
symbols = st.sampled_from(SYMBOLS)
quantities = st.one_of(
    st.integers(1, 6).map(Decimal),
    st.decimals(Decimal("0.000000001"), Decimal(12), places=9, allow_nan=False),
)
notionals = st.decimals(Decimal("0.01"), Decimal(3000), places=2, allow_nan=False)
prices = st.decimals(Decimal(1), Decimal(400), places=2, allow_nan=False)
sells = st.tuples(st.just("sell"), accounts, symbols, quantities)
steps = st.one_of(
    sells,
    sells,  # twice as likely: sells that race each other for the same shares
    st.tuples(st.just("buy"), accounts, symbols, quantities),
    st.tuples(st.just("buy_notional"), accounts, symbols, notionals),
    st.tuples(st.just("limit_buy"), accounts, symbols, quantities, prices),
    st.tuples(st.just("limit_sell"), accounts, symbols, quantities, prices),
    st.tuples(st.just("price"), symbols, prices),
    st.tuples(st.just("wait"), st.sampled_from([0, 1, 10, 60, 600, 3000])),
    st.tuples(st.just("cancel"), st.integers(0, 40)),
)
markets = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 10**6),
        "latency_seconds": st.sampled_from([0, 1, 30, 120]),
        "latency_jitter_seconds": st.sampled_from([0, 60]),
        "slippage_bps": st.sampled_from([0, 5, 50]),
        "partial_fills": st.fixed_dictionaries(
            {"probability": st.just(0.5), "interval_seconds": st.sampled_from([0, 30, 900])}
        ),
        "faults": st.just(
            {
                "timeout": {"probability": 0.1, "operations": ["submit", "cancel"], "seconds": 3},
                "disconnect": {"probability": 0.1, "operations": ["submit", "cancel", "cash"]},
                "ack_lost": {"probability": 0.3},
                "duplicate_fill_report": {"probability": 0.3},
                "out_of_order_fills": {"probability": 0.3},
            }
        ),
    }
)


def _apply(sim: Sim, step: tuple[Any, ...], sent: list[ClientOrderId]) -> None:
    kind = step[0]
    if kind == "wait":
        sim.wait(step[1])
    elif kind == "price":
        sim.quote(step[1], str(step[2]))
    elif kind == "cancel":
        if sent:
            sim.broker.cancel(sent[step[1] % len(sent)])
    else:
        account, symbol, size = step[1], step[2], str(step[3])
        side = "sell" if kind in ("sell", "limit_sell") else "buy"
        limit = str(step[4]) if kind.startswith("limit") else None
        order = (
            sim.order(side, symbol, notional=size, account=account)
            if kind == "buy_notional"
            else sim.order(side, symbol, quantity=size, limit=limit, account=account)
        )
        sent.append(order.client_order_id)
        sim.broker.submit(order)


def _check_nothing_negative(sim: Sim) -> None:
    for account in ACCOUNTS:
        cash, power, held = sim.broker.ledger.holdings(account)
        assert cash >= 0 and power >= 0
        assert all(q > 0 for q in held.values())


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(market=markets, script=st.lists(steps, min_size=3, max_size=30))
def test_cash_and_shares_never_go_negative_and_cash_adds_up(
    market: dict[str, Any], script: list[tuple[Any, ...]]
) -> None:
    clock = SimulatedClock(START)
    quotes = InMemoryPrices()
    broker = SimulatedBroker(
        "sqlite://",
        clock=clock,
        prices=quotes,
        calendar=CALENDAR,
        settings=SimulatorSettings.model_validate(market),
    )
    sim = Sim(broker, clock, quotes)
    sim.quote("VTI", "250.00")
    sim.quote("BND", "72.50")
    try:
        for account, (cash, held) in ACCOUNTS.items():
            broker.open_account(account, cash, held)  # type: ignore[arg-type]
        sent: list[ClientOrderId] = []
        for step in script:
            with contextlib.suppress(BrokerError):
                _apply(sim, step, sent)
            _check_nothing_negative(sim)
        sim.wait(4 * 3600)
        with contextlib.suppress(BrokerError):
            broker.orders()
        _check_books_add_up(sim)
    finally:
        broker.close()


def _check_books_add_up(sim: Sim) -> None:
    fills = {f.id: f for f in sim.broker.ledger.fills()}.values()  # a duplicate report once
    by_order: dict[str, list[Any]] = defaultdict(list)
    for f in fills:
        by_order[f.client_order_id].append(f)
    for order in sim.broker.ledger.orders():
        mine = by_order[order.client_order_id]
        assert order.filled_quantity == sum(f.quantity for f in mine)
        assert order.filled_notional == sum(amount_of(f.quantity, f.price) for f in mine)
        if order.notional is not None:
            assert order.filled_notional <= order.notional
        else:
            assert order.quantity is not None and order.filled_quantity <= order.quantity
    for account, (opening, held) in ACCOUNTS.items():
        mine = [f for f in fills if f.account == account]
        cash, _power, positions = sim.broker.ledger.holdings(account)
        sells = sum((amount_of(f.quantity, f.price) for f in mine if f.side is Side.SELL), ZERO)
        buys = sum((amount_of(f.quantity, f.price) for f in mine if f.side is Side.BUY), ZERO)
        assert cash == opening + sells - buys
        for symbol in SYMBOLS:
            bought = sum(
                (f.quantity for f in mine if f.symbol == symbol and f.side is Side.BUY), ZERO
            )
            sold = sum(
                (f.quantity for f in mine if f.symbol == symbol and f.side is Side.SELL), ZERO
            )
            assert positions.get(symbol, ZERO) == held.get(symbol, ZERO) + bought - sold
