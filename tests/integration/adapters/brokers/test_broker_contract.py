"""The broker port's contract: what every adapter does, whatever the counterparty.

Parametrised over the implementations through the ``market`` fixture: the simulated broker on
SQLite and on PostgreSQL (the ``database_url`` fixture). A new adapter (Alpaca, next issue)
joins by giving a harness with ``broker``, ``open`` (bring an account with cash and shares),
``quote`` (the market price from now on), ``wait`` (let market time pass) and ``order`` (an
order with a fresh client id). The tests use nothing else.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from simmarket import ACCOUNT, Sim, SimFactory, d

from rebal.domain.ids import AccountId, ClientOrderId, Symbol
from rebal.domain.money import QUANTITY_STEP, amount_of
from rebal.domain.order import OrderState, Side
from rebal.ports.broker import (
    Broker,
    BrokerOrder,
    DuplicateOrder,
    Opening,
    OpensAccounts,
    UnknownAccount,
    UnknownOrder,
)

Market = Sim


@pytest.fixture(params=["simulated"])
def market(request: pytest.FixtureRequest, make_sim: SimFactory) -> Market:
    """A broker harness of each implementation."""
    assert request.param == "simulated"
    return make_sim()


def settle(market: Market, placed: BrokerOrder, *, steps: int = 20) -> BrokerOrder:
    """The order once it has ended, waiting market time in steps (bounded)."""
    order = placed
    for _ in range(steps):
        if order.state.terminal:
            return order
        market.wait(30)
        found = market.broker.order(placed.client_order_id)
        assert found is not None
        order = found
    raise AssertionError(f"order {placed.client_order_id} did not end: {order.state}")


def test_the_implementations_are_brokers(market: Market) -> None:
    broker: Broker = market.broker
    assert broker.name


def test_a_market_sell_in_shares_fills_and_moves_cash_and_shares(market: Market) -> None:
    market.open("100.00", VTI="10")
    done = settle(market, market.broker.submit(market.order("sell", "VTI", quantity="4")))
    assert done.state is OrderState.FILLED
    assert done.side is Side.SELL and done.quantity == 4 and done.filled_quantity == 4
    fills = market.broker.fills(ACCOUNT)
    assert sum(f.quantity for f in fills) == 4
    proceeds = sum(amount_of(f.quantity, f.price) for f in fills)
    assert done.filled_notional == proceeds
    assert market.broker.cash(ACCOUNT) == d("100.00") + proceeds
    assert market.broker.positions(ACCOUNT) == {Symbol("VTI"): 6}


def test_a_notional_buy_never_spends_more_than_its_notional(market: Market) -> None:
    market.open("1000.00")
    done = settle(market, market.broker.submit(market.order("buy", "BND", notional="333.33")))
    assert done.state is OrderState.FILLED
    assert done.notional == d("333.33") and done.quantity is None
    assert 0 < done.filled_notional <= d("333.33")
    assert done.filled_quantity == done.filled_quantity.quantize(QUANTITY_STEP)
    assert market.broker.cash(ACCOUNT) == d("1000.00") - done.filled_notional
    assert market.broker.positions(ACCOUNT) == {Symbol("BND"): done.filled_quantity}


def test_a_client_order_id_is_never_accepted_twice(market: Market) -> None:
    market.open("1000.00", VTI="10")
    first = market.broker.submit(market.order("sell", "VTI", quantity="1", cid="run-7-0001"))
    with pytest.raises(DuplicateOrder) as raised:
        market.broker.submit(market.order("sell", "VTI", quantity="2", cid="run-7-0001"))
    assert raised.value.existing.broker_order_id == first.broker_order_id
    assert raised.value.existing.quantity == 1
    assert [o.client_order_id for o in market.broker.orders(ACCOUNT)] == ["run-7-0001"]


def test_an_order_the_broker_never_received_is_none(market: Market) -> None:
    market.open()
    assert market.broker.order(ClientOrderId("never-sent")) is None
    with pytest.raises(UnknownOrder):
        market.broker.cancel(ClientOrderId("never-sent"))


def test_a_working_order_can_be_canceled_and_frees_its_cash(market: Market) -> None:
    market.open("1000.00")
    placed = market.broker.submit(market.order("buy", "VTI", quantity="2", limit="100.00"))
    assert not placed.state.terminal
    assert market.broker.buying_power(ACCOUNT) == d("800.00")
    assert market.broker.cash(ACCOUNT) == d("1000.00")
    canceled = market.broker.cancel(placed.client_order_id)
    assert canceled.state is OrderState.CANCELED
    assert market.broker.buying_power(ACCOUNT) == d("1000.00")


def test_canceling_an_ended_order_gives_it_back_unchanged(market: Market) -> None:
    market.open("100.00", VTI="10")
    done = settle(market, market.broker.submit(market.order("sell", "VTI", quantity="1")))
    again = market.broker.cancel(done.client_order_id)
    assert again.state is OrderState.FILLED and again.filled_quantity == done.filled_quantity


def test_an_overdraft_is_refused_with_the_reason(market: Market) -> None:
    market.open("100.00")
    refused = market.broker.submit(market.order("buy", "BND", notional="100.01"))
    assert refused.state is OrderState.REJECTED
    assert "buying power" in refused.reason
    assert market.broker.cash(ACCOUNT) == d("100.00")
    assert market.broker.positions(ACCOUNT) == {}


def test_a_short_sale_is_refused_with_the_reason(market: Market) -> None:
    market.open("0.00", VTI="3")
    refused = market.broker.submit(market.order("sell", "VTI", quantity="3.000000001"))
    assert refused.state is OrderState.REJECTED
    assert "short" in refused.reason
    assert market.broker.positions(ACCOUNT) == {Symbol("VTI"): 3}


def test_selling_everything_leaves_no_zero_position(market: Market) -> None:
    market.open("0.00", VTI="2.5", BND="1")
    settle(market, market.broker.submit(market.order("sell", "VTI", quantity="2.5")))
    assert market.broker.positions(ACCOUNT) == {Symbol("BND"): 1}


def test_sale_proceeds_are_cash_a_buy_can_use(market: Market) -> None:
    market.open("0.00", VTI="4")
    sold = settle(market, market.broker.submit(market.order("sell", "VTI", quantity="4")))
    assert market.broker.buying_power(ACCOUNT) == sold.filled_notional
    bought = market.broker.submit(market.order("buy", "BND", notional=str(sold.filled_notional)))
    assert settle(market, bought).state is OrderState.FILLED
    assert market.broker.cash(ACCOUNT) >= 0


def test_orders_are_listed_oldest_first_and_per_account(market: Market) -> None:
    other = AccountId("ACC-2")
    market.open("1000.00", VTI="5")
    market.open("1000.00", account=other)
    a = market.broker.submit(market.order("sell", "VTI", quantity="1"))
    b = market.broker.submit(market.order("buy", "BND", notional="10.00", account=other))
    c = market.broker.submit(market.order("buy", "BND", notional="20.00"))
    assert [o.client_order_id for o in market.broker.orders(ACCOUNT)] == [
        a.client_order_id,
        c.client_order_id,
    ]
    everything = [o.client_order_id for o in market.broker.orders()]
    assert everything == [a.client_order_id, b.client_order_id, c.client_order_id]
    assert set(market.broker.accounts()) >= {ACCOUNT, other}


def test_fills_account_for_every_filled_share_and_cent(market: Market) -> None:
    market.open("5000.00", VTI="10", BND="20")
    placed = [
        market.broker.submit(market.order("sell", "VTI", quantity="3")),
        market.broker.submit(market.order("buy", "BND", notional="1234.56")),
        market.broker.submit(market.order("sell", "BND", quantity="0.5")),
    ]
    done = [settle(market, p) for p in placed]
    unique = {f.id: f for f in market.broker.fills(ACCOUNT)}.values()
    for order in done:
        mine = [f for f in unique if f.client_order_id == order.client_order_id]
        assert sum(f.quantity for f in mine) == order.filled_quantity
        assert sum(amount_of(f.quantity, f.price) for f in mine) == order.filled_notional
        assert all(f.at.tzinfo is not None and f.account == ACCOUNT for f in mine)
    sells = sum(amount_of(f.quantity, f.price) for f in unique if f.side is Side.SELL)
    buys = sum(amount_of(f.quantity, f.price) for f in unique if f.side is Side.BUY)
    assert market.broker.cash(ACCOUNT) == d("5000.00") + sells - buys


def test_an_unknown_account_is_an_error(market: Market) -> None:
    market.open()
    stranger = AccountId("NOBODY")
    for ask in (market.broker.cash, market.broker.positions, market.broker.buying_power):
        with pytest.raises(UnknownAccount):
            ask(stranger)
    with pytest.raises(UnknownAccount):
        market.broker.submit(market.order("buy", "BND", notional="1.00", account=stranger))
    assert market.broker.order(ClientOrderId("run-1-0001")) is None


def test_money_is_exact_to_the_cent(market: Market) -> None:
    market.open("10.01", VTI="0.333333333")
    settle(market, market.broker.submit(market.order("sell", "VTI", quantity="0.333333333")))
    cash = market.broker.cash(ACCOUNT)
    assert isinstance(cash, Decimal) and cash == cash.quantize(Decimal("0.01"))
    assert cash == d("10.01") + amount_of(d("0.333333333"), market.broker.fills()[0].price)


def test_a_batch_is_answered_order_by_order_as_single_submits_are(market: Market) -> None:
    market.open("1000.00", VTI="10")
    first = market.broker.submit(market.order("sell", "VTI", quantity="1", cid="b-0"))
    batch = [
        market.order("sell", "VTI", quantity="2", cid="b-1"),
        market.order("sell", "VTI", quantity="1", cid="b-0"),  # known already
        market.order("buy", "BND", notional="5000.00", cid="b-2"),  # more than the cash
        market.order("buy", "BND", notional="10.00", cid="b-3", account=AccountId("NOBODY")),
        market.order("sell", "VTI", quantity="2", cid="b-1"),  # earlier in this batch
    ]
    answers = market.broker.submit_many(batch)
    assert len(answers) == 5
    assert isinstance(answers[0], BrokerOrder) and answers[0].client_order_id == "b-1"
    assert isinstance(answers[1], DuplicateOrder)
    assert answers[1].existing.broker_order_id == first.broker_order_id
    assert isinstance(answers[2], BrokerOrder) and answers[2].state is OrderState.REJECTED
    assert isinstance(answers[3], UnknownAccount)
    assert isinstance(answers[4], DuplicateOrder)
    assert [o.client_order_id for o in market.broker.orders(ACCOUNT)] == ["b-0", "b-1", "b-2"]
    assert settle(market, answers[0]).filled_quantity == 2
    assert market.broker.submit_many([]) == []


def test_accounts_can_be_brought_to_a_broker_that_opens_them(market: Market) -> None:
    if not isinstance(market.broker, OpensAccounts):
        pytest.skip(f"{market.broker.name} opens no accounts")
    first = {
        AccountId("NEW"): Opening(cash=d("5.00"), positions={Symbol("VTI"): d("1")}),
        AccountId("NEW-2"): Opening(cash=d("0.00"), positions={}),
    }
    assert market.broker.open_accounts(first) == set(first)
    again = {
        AccountId("NEW"): Opening(cash=d("9.00"), positions={}),
        AccountId("NEW-3"): Opening(cash=d("1.00"), positions={}),
    }
    assert market.broker.open_accounts(again) == {AccountId("NEW-3")}
    assert market.broker.cash(AccountId("NEW")) == d("5.00")  # opened once, left as it is
    assert market.broker.positions(AccountId("NEW")) == {Symbol("VTI"): 1}
    assert market.broker.positions(AccountId("NEW-2")) == {}
