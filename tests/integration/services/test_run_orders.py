"""The order terms of a run on the store and the simulated broker: limit orders priced from the
quote, extended hours, and TWAP/VWAP parents sliced into children sent over the window, once."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from rundesk import START, Desk, d, make_desk, small_book, submits

from rebal.domain.account import Price
from rebal.domain.ids import AccountId, Symbol
from rebal.domain.order import Order, OrderState, OrderType, Side
from rebal.domain.run import Run, RunState, RunType, ScopeKind
from rebal.services.execution import ExecutionSettings, execute_run
from rebal.services.order_terms import Algo, OrderTerms
from rebal.services.runs import canonical


def _config(**terms: object) -> str:
    return canonical({"policy": "full", **OrderTerms(**terms).options()})  # type: ignore[arg-type]


def _start(desk: Desk, **terms: object) -> Run:
    """Start the full rebalance of account A1 with the order ``terms``."""
    run, _ = desk.start(scope=ScopeKind.ACCOUNT, name="A1", policy="full", config=_config(**terms))
    return run


def _orders(desk: Desk, run: Run) -> list[Order]:
    with desk.store.unit_of_work(actor="t", reason="read") as uow:
        return list(uow.orders.for_run(run.id))


def _reconciled(desk: Desk, account: str) -> None:
    with desk.store.unit_of_work(actor="t", reason="read") as uow:
        acct = uow.accounts.get(AccountId(account))
        assert acct is not None
        held = dict(uow.holdings.positions(AccountId(account)))
    assert acct.cash == desk.broker.cash(AccountId(account)) and acct.cash >= 0
    assert held == dict(desk.broker.positions(AccountId(account)))


def test_a_limit_sell_above_the_market_does_not_fill_and_the_run_times_out(desk: Desk) -> None:
    run = _start(desk, type=OrderType.LIMIT, limit_offset_bps=Decimal(-100))
    (sell,) = _orders(desk, run)
    assert (sell.type, sell.limit_price) == (OrderType.LIMIT, d("252.50"))  # 250 x 1.01
    done = desk.execute(run, max_wait_seconds=600)
    assert done.state is RunState.TIMEOUT
    assert done.reason == f"still working after 600 s, canceled: {sell.client_order_id}"
    (after,) = _orders(desk, run)
    assert after.state is OrderState.CANCELED and after.filled_quantity == 0
    _reconciled(desk, "A1")


def test_a_marketable_limit_run_buys_in_shares_within_the_limit(desk: Desk) -> None:
    run = _start(desk, type=OrderType.LIMIT, limit_offset_bps=Decimal(50))
    done = desk.execute(run)
    assert done.state is RunState.COMPLETED, done.reason
    sell, buy = sorted(_orders(desk, run), key=lambda o: o.side is Side.BUY)
    assert sell.limit_price == d("248.75")  # 250 x 0.995
    assert buy.limit_price == d("72.86")  # 72.50 x 1.005 = 72.8625, down to the cent
    # 4,400 at most at the limit, in shares rounded down to the nano-share
    assert buy.notional is None and buy.quantity == d("60.389788635")
    assert buy.filled_avg_price is not None and buy.filled_avg_price <= buy.limit_price
    _reconciled(desk, "A1")


@pytest.mark.parametrize("extended", [False, True])
def test_extended_hours_orders_fill_after_the_close_only_when_flagged(
    database_url: str, extended: bool
) -> None:
    desk = make_desk(database_url, small_book(1))
    desk.clock.advance(timedelta(hours=5, minutes=50))  # 15:50 in New York
    # the quote reaches the limit at 16:10, after the close
    desk.prices.add(
        Price(symbol=Symbol("VTI"), price=d("253.00"), at=START.replace(hour=16, minute=10))
    )
    run, _ = desk.start(
        scope=ScopeKind.ACCOUNT,
        name="A1",
        type=RunType.LIQUIDATION,
        config=_config(
            type=OrderType.LIMIT, limit_offset_bps=Decimal(-100), extended_hours=extended
        ),
    )
    done = desk.execute(run)
    (sell,) = _orders(desk, run)
    assert sell.extended_hours is extended
    if extended:
        assert done.state is RunState.COMPLETED, done.reason
        assert sell.state is OrderState.FILLED and sell.filled_quantity == 40
    else:
        assert done.state is RunState.COMPLETED_ADJUSTED
        assert sell.state is OrderState.EXPIRED and sell.filled_quantity == 0
        assert "expires" in done.reason
    _reconciled(desk, "A1")


def test_twap_slices_are_sent_one_at_a_time_over_the_window(desk: Desk) -> None:
    run = _start(desk, algo=Algo.TWAP, algo_window_minutes=30, algo_slices=3)
    done = desk.execute(run)
    # each child's fill is rounded to the cent: 3 x 4.533333.. x 250 raise 3,399.99, a cent
    # short of one order's 3,400.00, and the buys shrink by it
    assert done.state is RunState.COMPLETED_ADJUSTED, done.reason
    assert done.reason.endswith(
        "resized from 4400.00 to 4399.99: the sells raised 0.01 less cash than estimated"
    )
    orders = _orders(desk, run)
    parents = {o.client_order_id: o for o in orders if o.parent is None}
    children = [o for o in orders if o.parent is not None]
    assert len(parents) == 2 and len(children) == 6
    sell = next(p for p in parents.values() if p.side is Side.SELL)
    buy = next(p for p in parents.values() if p.side is Side.BUY)
    mine = sorted((c for c in children if c.parent == sell.client_order_id), key=str)
    assert [c.client_order_id for c in mine] == [f"{sell.client_order_id}-{k}" for k in (1, 2, 3)]
    assert [c.quantity for c in mine] == [d("4.533333"), d("4.533333"), d("4.533334")]
    bought = [c.notional for c in children if c.parent == buy.client_order_id]
    assert sorted(bought) == [d("1466.66"), d("1466.66"), d("1466.67")]
    assert sell.state is buy.state is OrderState.FILLED
    assert sell.filled_quantity == d("13.6")
    # only the children reach the broker, each once, 10 minutes apart
    at_broker = {o.client_order_id: o for o in desk.broker.orders()}
    assert set(at_broker) == {c.client_order_id for c in children}
    assert set(submits(desk).values()) == {1}
    sent = sorted(at_broker[c.client_order_id].submitted_at for c in mine)
    assert [s - sent[0] for s in sent] == [
        timedelta(0),
        timedelta(minutes=10),
        timedelta(minutes=20),
    ]
    _reconciled(desk, "A1")


class _Crash(Exception):
    """The process running the run died."""


class _DiesAtSecondSlice:
    """The desk's clock, which kills the run when it waits for the second slice."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    def now(self) -> datetime:
        return self.desk.clock.now()

    def sleep(self, seconds: float) -> None:
        if seconds == 600:
            raise _Crash
        self.desk.clock.sleep(seconds)


def test_a_resumed_vwap_run_never_resends_a_child(desk: Desk) -> None:
    run = _start(desk, algo=Algo.VWAP, algo_window_minutes=30, algo_slices=3)
    with pytest.raises(_Crash):
        execute_run(
            desk.store,
            desk.broker,
            run.id,
            clock=_DiesAtSecondSlice(desk),
            actor="t",
            settings=ExecutionSettings(),
            compliance=desk.compliance(),
        )
    orders = _orders(desk, run)
    children = [o for o in orders if o.parent is not None]
    assert len(children) == 3  # every slice's intent was committed before the first was sent
    assert set(submits(desk)) == {children[0].client_order_id}
    done = desk.execute(run)
    assert done.state is RunState.COMPLETED_ADJUSTED, done.reason  # the cent, as with TWAP
    sent = submits(desk)
    assert set(sent.values()) == {1} and len(sent) == 6
    # 10:00-10:30 by the profile: 10:00-10:10 and 10:10-10:20 and 10:20-10:30 weigh alike
    # (one half hour), so the sell's slices are equal but the last takes the remainder
    sell = [c for c in _orders(desk, run) if c.parent is not None and c.side is Side.SELL]
    assert [c.quantity for c in sell] == [d("4.533333"), d("4.533333"), d("4.533334")]
    with desk.store.unit_of_work(actor="t", reason="read") as uow:
        events = [e.reason for e in uow.runs.events(run.id)]
    # the sliced parent, the first child filled, the two children not sent yet
    (resumed,) = [e for e in events if e.startswith("resumed")]
    assert resumed.startswith("resumed after an interruption: 1 order(s) possibly sent")
    assert resumed.endswith("2 intent(s) not sent yet; 1 ended")
    _reconciled(desk, "A1")


def test_vwap_weighs_the_morning_more_than_midday(desk: Desk) -> None:
    run = _start(desk, algo=Algo.VWAP, algo_window_minutes=180, algo_slices=2)
    assert desk.execute(run).state is RunState.COMPLETED
    sells = sorted(
        (o for o in _orders(desk, run) if o.parent is not None and o.side is Side.SELL),
        key=lambda o: o.client_order_id,
    )
    # from 10:00: 10:00-11:30 expects 23 % of the day, 11:30-13:00 17 %: 13.6 x 23 / 40
    assert [o.quantity for o in sells] == [d("7.82"), d("5.78")]
    assert all(o.state is OrderState.FILLED for o in sells)


@pytest.mark.parametrize(
    ("advance", "extended", "closed"),
    [
        (timedelta(hours=7), True, False),  # 17:00 in New York: the after-hours session
        (timedelta(hours=7), False, True),  # a regular run after the close
        (timedelta(hours=10) - timedelta(microseconds=1), True, False),  # just before 20:00
        (timedelta(hours=10), True, True),  # 20:00: the after-hours session is over
        (timedelta(hours=18), True, False),  # 04:00 the next day: the pre-market
        (timedelta(hours=18) - timedelta(microseconds=1), True, True),  # before it opens
    ],
)
def test_an_extended_hours_run_trades_outside_regular_hours_only_in_extended_hours(
    desk: Desk, advance: timedelta, extended: bool, closed: bool
) -> None:
    desk.clock.advance(advance)
    run = _start(desk, type=OrderType.LIMIT, extended_hours=extended)
    done = desk.execute(run)
    if closed:
        assert done.state is RunState.ERROR
        assert done.reason.startswith("blocked by compliance: MARKET_CLOSED: the market is closed")
        assert desk.broker.orders() == []
        return
    assert done.state is RunState.COMPLETED, done.reason
    orders = _orders(desk, run)
    assert {o.side for o in orders} == {Side.SELL, Side.BUY}
    assert all(o.extended_hours and o.state is OrderState.FILLED for o in orders)
    _reconciled(desk, "A1")
