"""The custodian trade-file adapter: orders out as a block file, fills and holdings back."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from rebal.adapters.brokers.tradefile import BLOCK_COLUMNS, TradeFileBroker, TradeFileError
from rebal.adapters.memory.clock import SimulatedClock
from rebal.domain.ids import AccountId, ClientOrderId, Symbol
from rebal.domain.money import Money, Quantity
from rebal.domain.order import Order, OrderState, Side
from rebal.ports.broker import Broker, BrokerError, DuplicateOrder, UnknownAccount, UnknownOrder

NOW = datetime(2026, 11, 20, 19, 30, tzinfo=UTC)
A = AccountId("ACC-1")


@pytest.fixture
def files(tmp_path: Path) -> tuple[TradeFileBroker, Path, Path, Path]:
    block, fills, holdings = (
        tmp_path / "block.csv",
        tmp_path / "fills.csv",
        tmp_path / "holdings.csv",
    )
    holdings.write_text("account,symbol,quantity\nACC-1,VTI,10.5\nACC-1,CASH,1000.25\n")
    return TradeFileBroker(block, fills, holdings, SimulatedClock(NOW)), block, fills, holdings


def sell(cid: str, quantity: str) -> Order:
    return Order(
        client_order_id=ClientOrderId(cid),
        account=A,
        symbol=Symbol("VTI"),
        side=Side.SELL,
        quantity=Quantity(Decimal(quantity)),
    )


def buy(cid: str, notional: str) -> Order:
    return Order(
        client_order_id=ClientOrderId(cid),
        account=A,
        symbol=Symbol("BND"),
        side=Side.BUY,
        notional=Money(Decimal(notional)),
    )


def test_orders_go_out_in_one_block_file_with_exact_sizes(files) -> None:
    broker, block, _, _ = files
    adapter: Broker = broker

    placed = adapter.submit_many([sell("s1", "4.123456789"), buy("b1", "250.10")])

    rows = list(csv.DictReader(block.open()))
    assert tuple(rows[0]) == BLOCK_COLUMNS
    assert [(r["client_order_id"], r["side"], r["quantity"], r["notional"]) for r in rows] == [
        ("s1", "sell", "4.123456789", ""),
        ("b1", "buy", "", "250.10"),
    ]
    assert rows[0]["submitted_at"] == NOW.isoformat()
    assert all(not isinstance(p, BrokerError) and p.state is OrderState.SUBMITTED for p in placed)


def test_an_order_is_written_once_per_client_order_id(files) -> None:
    broker, block, _, _ = files
    broker.submit(sell("s1", "4"))

    with pytest.raises(DuplicateOrder) as raised:
        broker.submit(sell("s1", "4"))

    assert raised.value.existing.client_order_id == "s1"
    assert len(list(csv.DictReader(block.open()))) == 1


def test_fills_read_back_move_the_orders_along_and_a_repeated_fill_counts_once(files) -> None:
    broker, _, fills, _ = files
    broker.submit_many([sell("s1", "4"), buy("b1", "250.10")])
    fills.write_text(
        "client_order_id,fill_id,quantity,price,filled_at\n"
        "s1,f1,1.5,200.00,2026-11-20T19:31:00+00:00\n"
        "s1,f1,1.5,200.00,2026-11-20T19:31:00+00:00\n"
        "b1,f2,3.4,73.5588,2026-11-20T19:32:00+00:00\n"
    )

    s1, b1 = broker.order(ClientOrderId("s1")), broker.order(ClientOrderId("b1"))

    assert s1 is not None and s1.state is OrderState.PARTIALLY_FILLED
    assert s1.filled_quantity == Decimal("1.5") and s1.filled_notional == Decimal("300.00")
    assert b1 is not None and b1.state is OrderState.FILLED
    assert b1.filled_avg_price == Decimal("73.5588")
    assert len(broker.fills(A)) == 2


def test_holdings_give_positions_and_cash(files) -> None:
    broker, *_ = files
    assert broker.accounts() == [A]
    assert broker.positions(A) == {Symbol("VTI"): Decimal("10.5")}
    assert broker.cash(A) == Decimal("1000.25")
    broker.submit(buy("b1", "250.10"))
    assert broker.buying_power(A) == Decimal("750.15")
    with pytest.raises(UnknownAccount):
        broker.cash(AccountId("NOPE"))


def test_a_written_order_cannot_be_recalled(files) -> None:
    broker, *_ = files
    broker.submit(sell("s1", "4"))
    with pytest.raises(BrokerError, match="cancel it with the custodian"):
        broker.cancel(ClientOrderId("s1"))
    with pytest.raises(UnknownOrder):
        broker.cancel(ClientOrderId("never"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("client_order_id,fill_id,quantity,price\ns1,f1,1,2\n", ":1: missing column filled_at"),
        (
            "client_order_id,fill_id,quantity,price,filled_at\ns1,f1,x,2,2026-11-20T19:31:00+00:00\n",
            ":2: quantity 'x' is not a number",
        ),
        (
            "client_order_id,fill_id,quantity,price,filled_at\ns1,f1,1,2,2026-11-20T19:31:00\n",
            ":2: filled_at '2026-11-20T19:31:00' must be an ISO 8601 time with its offset",
        ),
        (
            "client_order_id,fill_id,quantity,price,filled_at\nzz,f1,1,2,2026-11-20T19:31:00+00:00\n",
            ":2: client_order_id zz is not in",
        ),
    ],
)
def test_a_bad_fills_file_names_its_line_and_column(files, text: str, message: str) -> None:
    broker, _, fills, _ = files
    broker.submit(sell("s1", "4"))
    fills.write_text(text)
    with pytest.raises(TradeFileError, match=message.replace("(", r"\(")):
        broker.fills()
