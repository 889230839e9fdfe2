"""The simulated broker's market, behaviour by behaviour: prices with slippage, partial fills,
latency, day orders expiring at the close (an early close too), limit orders, extended hours,
rejections."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from simmarket import ACCOUNT, ET, Sim, SimFactory, d

from rebal.domain.ids import AccountId, Symbol
from rebal.domain.money import amount_of
from rebal.domain.order import OrderState, TimeInForce
from rebal.ports.broker import UnknownAccount


def test_buys_pay_the_slippage_and_sells_give_it_up_rounded_against_the_order(
    make_sim: SimFactory,
) -> None:
    sim = make_sim(slippage_bps=5)
    sim.quote("VTI", "250.10")
    sim.open("10000.00", VTI="10")
    sold = sim.broker.submit(sim.order("sell", "VTI", quantity="4"))
    bought = sim.broker.submit(sim.order("buy", "VTI", quantity="1"))
    # 250.10 x 0.9995 = 249.97495, rounded down to 4 places; x 1.0005 = 250.22505, rounded up.
    assert sold.filled_avg_price == d("249.9749")
    assert bought.filled_avg_price == d("250.2251")
    assert sold.filled_notional == amount_of(d("4"), d("249.9749")) == d("999.90")
    assert sim.broker.cash(ACCOUNT) == d("10000.00") + d("999.90") - d("250.23")


def test_without_slippage_an_order_fills_at_the_quote(sim: Sim) -> None:
    sim.open("1000.00")
    bought = sim.broker.submit(sim.order("buy", "BND", quantity="2"))
    assert bought.state is OrderState.FILLED
    assert bought.filled_avg_price == d("72.5") and bought.filled_notional == d("145.00")


def test_a_notional_buy_becomes_a_quantity_rounded_down_to_nine_places(sim: Sim) -> None:
    sim.quote("BND", "3")
    sim.open("100.00")
    bought = sim.broker.submit(sim.order("buy", "BND", notional="100.00"))
    assert bought.filled_quantity == d("33.333333333")
    assert bought.filled_notional == d("100.00")  # 99.999999999 to the cent
    assert sim.broker.cash(ACCOUNT) == 0


def test_partial_fills_sum_to_the_order_at_their_interval(make_sim: SimFactory) -> None:
    sim = make_sim(partial_fills={"probability": 1.0, "max_parts": 4, "interval_seconds": 60})
    sim.open("10000.00", VTI="100")
    start = sim.clock.now()
    first = sim.broker.submit(sim.order("sell", "VTI", quantity="37"))
    assert first.state is OrderState.PARTIALLY_FILLED
    assert 0 < first.filled_quantity < 37
    sim.wait(600)
    done = sim.broker.order(first.client_order_id)
    assert done is not None and done.state is OrderState.FILLED
    fills = sim.broker.fills(ACCOUNT)
    assert 2 <= len(fills) <= 4
    assert sum(f.quantity for f in fills) == 37
    assert all(f.quantity == f.quantity.to_integral_value() for f in fills)  # whole shares
    assert [f.at - start for f in fills] == [timedelta(seconds=60 * k) for k in range(len(fills))]


def test_partial_notional_fills_never_spend_more_than_the_notional(make_sim: SimFactory) -> None:
    sim = make_sim(partial_fills={"probability": 1.0, "max_parts": 5, "interval_seconds": 1})
    sim.quote("BND", "7.3333")
    sim.open("500.00")
    sim.broker.submit(sim.order("buy", "BND", notional="500.00"))
    sim.wait(10)
    fills = sim.broker.fills(ACCOUNT)
    assert len(fills) >= 2
    spent = sum(amount_of(f.quantity, f.price) for f in fills)
    assert spent <= d("500.00")
    assert sim.broker.cash(ACCOUNT) == d("500.00") - spent


def test_an_order_fills_only_once_the_clock_has_passed_its_latency(make_sim: SimFactory) -> None:
    sim = make_sim(latency_seconds=5)
    sim.open("0.00", VTI="10")
    placed = sim.broker.submit(sim.order("sell", "VTI", quantity="1"))
    assert placed.state is OrderState.ACCEPTED
    sim.wait(4.999)
    waiting = sim.broker.order(placed.client_order_id)
    assert waiting is not None and waiting.state is OrderState.ACCEPTED
    assert sim.broker.positions(ACCOUNT) == {Symbol("VTI"): 10}
    sim.wait(0.001)
    filled = sim.broker.order(placed.client_order_id)
    assert filled is not None and filled.state is OrderState.FILLED
    assert sim.broker.fills()[0].at == placed.submitted_at + timedelta(seconds=5)


def test_latency_jitter_is_drawn_per_order_within_its_range(make_sim: SimFactory) -> None:
    sim = make_sim(latency_seconds=2, latency_jitter_seconds=10)
    sim.open("0.00", VTI="10")
    placed = [sim.broker.submit(sim.order("sell", "VTI", quantity="1")) for _ in range(5)]
    sim.wait(60)
    lags = {
        f.client_order_id: f.at - o.submitted_at
        for o in placed
        for f in sim.broker.fills()
        if f.client_order_id == o.client_order_id
    }
    assert all(timedelta(seconds=2) <= lag < timedelta(seconds=12) for lag in lags.values())
    assert len(set(lags.values())) > 1


def test_a_day_order_unfilled_at_the_close_expires(make_sim: SimFactory) -> None:
    sim = make_sim(start=datetime(2026, 11, 24, 15, 59, 0, tzinfo=ET), latency_seconds=90)
    sim.open("0.00", VTI="10")
    placed = sim.broker.submit(sim.order("sell", "VTI", quantity="1"))
    sim.wait(3600)
    ended = sim.broker.order(placed.client_order_id)
    assert ended is not None and ended.state is OrderState.EXPIRED
    assert ended.updated_at == datetime(2026, 11, 24, 16, 0, tzinfo=ET)
    assert "close" in ended.reason
    assert sim.broker.positions(ACCOUNT) == {Symbol("VTI"): 10}


def test_on_an_early_close_day_orders_expire_at_one(make_sim: SimFactory) -> None:
    # The day after Thanksgiving 2026 the NYSE closes at 13:00 New York time.
    sim = make_sim(
        start=datetime(2026, 11, 27, 12, 58, tzinfo=ET),
        partial_fills={"probability": 1.0, "max_parts": 3, "interval_seconds": 150},
    )
    sim.open("0.00", VTI="30")
    placed = sim.broker.submit(sim.order("sell", "VTI", quantity="30"))
    sim.at(datetime(2026, 11, 27, 16, 30, tzinfo=ET))
    ended = sim.broker.order(placed.client_order_id)
    assert ended is not None and ended.state is OrderState.EXPIRED
    assert ended.updated_at == datetime(2026, 11, 27, 13, 0, tzinfo=ET)
    assert 0 < ended.filled_quantity < 30  # the part at 12:58 filled, the next (13:00:30) not
    assert sim.broker.positions(ACCOUNT) == {Symbol("VTI"): 30 - ended.filled_quantity}


def test_an_order_sent_while_the_market_is_closed_fills_at_the_next_open(
    make_sim: SimFactory,
) -> None:
    # Sent after Christmas Eve's early close: the next session is Monday 2026-12-28.
    sim = make_sim(start=datetime(2026, 12, 24, 13, 30, tzinfo=ET))
    sim.open("0.00", VTI="10")
    placed = sim.broker.submit(sim.order("sell", "VTI", quantity="1"))
    assert placed.state is OrderState.ACCEPTED
    sim.quote("VTI", "251.00", datetime(2026, 12, 28, 9, 30, tzinfo=ET))
    sim.at(datetime(2026, 12, 28, 9, 31, tzinfo=ET))
    (fill,) = sim.broker.fills()
    assert fill.at == datetime(2026, 12, 28, 9, 30, tzinfo=ET)
    assert fill.price == d("251")


def test_a_good_till_canceled_order_outlives_the_close(make_sim: SimFactory) -> None:
    sim = make_sim(start=datetime(2026, 11, 24, 15, 59, 30, tzinfo=ET), latency_seconds=60)
    sim.open("0.00", VTI="10")
    placed = sim.broker.submit(
        sim.order("sell", "VTI", quantity="1", time_in_force=TimeInForce.GTC)
    )
    sim.at(datetime(2026, 11, 25, 12, 0, tzinfo=ET))
    filled = sim.broker.order(placed.client_order_id)
    assert filled is not None and filled.state is OrderState.FILLED
    assert filled.updated_at == datetime(2026, 11, 25, 9, 30, tzinfo=ET)


def test_a_limit_order_fills_only_at_or_better_than_its_limit(make_sim: SimFactory) -> None:
    sim = make_sim(limit_recheck_seconds=60)
    sim.open("1000.00", VTI="10")
    buy = sim.broker.submit(sim.order("buy", "VTI", quantity="1", limit="249.00"))
    sell = sim.broker.submit(sim.order("sell", "VTI", quantity="1", limit="260.00"))
    assert buy.state is OrderState.ACCEPTED and sell.state is OrderState.ACCEPTED
    sim.wait(600)
    assert sim.broker.fills() == []
    moved = sim.clock.now() + timedelta(seconds=30)
    sim.quote("VTI", "248.50", moved)
    sim.wait(120)
    done = sim.broker.order(buy.client_order_id)
    assert done is not None and done.state is OrderState.FILLED
    assert done.filled_avg_price == d("248.5")  # at the market, better than the limit
    still = sim.broker.order(sell.client_order_id)
    assert still is not None and still.state is OrderState.ACCEPTED
    sim.quote("VTI", "260.00")
    sim.wait(60)
    sold = sim.broker.order(sell.client_order_id)
    assert sold is not None and sold.state is OrderState.FILLED
    assert sold.filled_avg_price == d("260")


def test_an_extended_hours_limit_order_fills_after_the_close(make_sim: SimFactory) -> None:
    sim = make_sim(start=datetime(2026, 11, 24, 17, 0, tzinfo=ET))
    sim.open("0.00", VTI="10")
    extended = sim.broker.submit(
        sim.order("sell", "VTI", quantity="1", limit="240.00", extended_hours=True)
    )
    regular = sim.broker.submit(sim.order("sell", "VTI", quantity="1", limit="240.00"))
    assert extended.state is OrderState.FILLED
    assert regular.state is OrderState.ACCEPTED  # waits for the next regular session
    sim.at(datetime(2026, 11, 24, 20, 30, tzinfo=ET))
    late = sim.broker.submit(
        sim.order("sell", "VTI", quantity="1", limit="240.00", extended_hours=True)
    )
    assert late.state is OrderState.ACCEPTED  # after-hours end at 20:00; pre-market from 04:00
    sim.at(datetime(2026, 11, 25, 4, 1, tzinfo=ET))
    filled = sim.broker.order(late.client_order_id)
    assert filled is not None and filled.updated_at == datetime(2026, 11, 25, 4, 0, tzinfo=ET)


@pytest.mark.parametrize(
    ("ask", "reason"),
    [
        ({"side": "sell", "symbol": "VTI", "notional": "10.00"}, "in shares"),
        ({"side": "buy", "symbol": "VTI", "notional": "10.00", "limit": "1"}, "market order"),
        ({"side": "buy", "symbol": "VTI", "quantity": "1", "extended_hours": True}, "limit"),
        ({"side": "buy", "symbol": "XYZ", "quantity": "1"}, "no price for XYZ"),
    ],
)
def test_orders_the_broker_does_not_take_are_rejected_with_the_reason(
    sim: Sim, ask: dict[str, str], reason: str
) -> None:
    sim.open("1000.00", VTI="10")
    rest = dict(ask)
    side, symbol = rest.pop("side"), rest.pop("symbol")
    refused = sim.broker.submit(sim.order(side, symbol, **rest))  # type: ignore[arg-type]
    assert refused.state is OrderState.REJECTED
    assert reason in refused.reason
    assert sim.broker.cash(ACCOUNT) == d("1000.00")


@pytest.mark.parametrize(
    ("size", "problem"),
    [({"quantity": "0.0000000001"}, "9 decimal places"), ({"notional": "10.001"}, "cents")],
)
def test_an_order_the_ledger_cannot_hold_exactly_never_reaches_it(
    sim: Sim, size: dict[str, str], problem: str
) -> None:
    sim.open("1000.00")
    with pytest.raises(ValueError, match=problem):
        sim.order("buy", "VTI", **size)  # type: ignore[arg-type]
    assert sim.broker.orders(ACCOUNT) == []


def test_rejections_by_symbol_and_by_chance(make_sim: SimFactory) -> None:
    sim = make_sim(rejections={"symbols": ["bnd"], "reason": "halted"})
    sim.open("1000.00")
    refused = sim.broker.submit(sim.order("buy", "BND", notional="10.00"))
    assert (refused.state, refused.reason) == (OrderState.REJECTED, "halted")
    always = make_sim(
        url=sim.broker.engine.url.render_as_string(False), rejections={"probability": 1.0}
    )
    assert always.broker.submit(sim.order("buy", "VTI", notional="10.00")).state is (
        OrderState.REJECTED
    )
    assert len(sim.broker.orders(ACCOUNT)) == 2  # a rejected order is kept, its id used


def test_working_buys_hold_cash_back_so_two_cannot_overdraw(make_sim: SimFactory) -> None:
    sim = make_sim(latency_seconds=60)
    sim.open("1000.00")
    first = sim.broker.submit(sim.order("buy", "BND", notional="600.00"))
    second = sim.broker.submit(sim.order("buy", "VTI", notional="600.00"))
    assert first.state is OrderState.ACCEPTED
    assert second.state is OrderState.REJECTED and "400.00" in second.reason
    assert sim.broker.buying_power(ACCOUNT) == d("400.00")


def test_working_sells_hold_shares_back_so_two_cannot_go_short(make_sim: SimFactory) -> None:
    sim = make_sim(latency_seconds=60)
    sim.open("0.00", VTI="10")
    assert sim.broker.submit(sim.order("sell", "VTI", quantity="6")).state is OrderState.ACCEPTED
    second = sim.broker.submit(sim.order("sell", "VTI", quantity="5"))
    assert second.state is OrderState.REJECTED and "4 are not already being sold" in second.reason


def test_a_quantity_buy_whose_price_rose_beyond_the_cash_is_canceled_not_overdrawn(
    make_sim: SimFactory,
) -> None:
    sim = make_sim(latency_seconds=60)
    sim.open("1000.00")
    placed = sim.broker.submit(sim.order("buy", "VTI", quantity="4"))  # 4 x 250 = all the cash
    assert placed.state is OrderState.ACCEPTED
    sim.quote("VTI", "260.00")
    sim.wait(60)
    ended = sim.broker.order(placed.client_order_id)
    assert ended is not None and ended.state is OrderState.CANCELED
    assert "not enough cash" in ended.reason
    assert sim.broker.cash(ACCOUNT) == d("1000.00")


def test_account_reports_answer_as_the_single_calls_in_one_request(make_sim: SimFactory) -> None:
    sim = make_sim(partial_fills={"probability": 1.0, "max_parts": 3, "interval_seconds": 60})
    other = AccountId("ACC-2")
    sim.open("5000.00", VTI="10")
    sim.open("300.00", account=other)
    sim.broker.submit(sim.order("sell", "VTI", quantity="4"))
    sim.broker.submit(sim.order("buy", "BND", notional="1000.00"))  # working: holds cash back
    sim.wait(30)
    reports = sim.broker.account_reports([ACCOUNT, other])
    for account in (ACCOUNT, other):
        report = reports[account]
        assert report.cash == sim.broker.cash(account)
        assert report.buying_power == sim.broker.buying_power(account)
        assert report.positions == sim.broker.positions(account)
        assert report.orders == sim.broker.orders(account)
    assert reports[ACCOUNT].buying_power < reports[ACCOUNT].cash
    assert reports[other].orders == [] and reports[other].positions == {}
    with pytest.raises(UnknownAccount):
        sim.broker.account_reports([ACCOUNT, AccountId("NOPE")])
