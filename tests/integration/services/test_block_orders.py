"""Block orders (rebal run --block-orders) on the store and the simulated broker, on SQLite and
PostgreSQL: one block per symbol and side from the omnibus account, the fills allocated back
exactly, each account's book reconciling with its ledger, and no block sent twice."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from rundesk import Desk, make_desk, small_book, submits

from rebal.adapters.brokers.simulated.ledger import OMNIBUS
from rebal.domain.ids import AccountId, ClientOrderId, Symbol
from rebal.domain.money import Money, amount_of
from rebal.domain.order import Order, OrderState, Side
from rebal.domain.run import Run, RunState
from rebal.ports.broker import BlockLeg, DuplicateOrder
from rebal.services.blocks import block_order_id, check_block_options
from rebal.services.execution import cancel_run
from rebal.services.runs import canonical


def _start(desk: Desk) -> Run:
    run, _ = desk.start(policy="full", config=canonical({"policy": "full", "block_orders": True}))
    return run


def _orders(desk: Desk, run: Run) -> list[Order]:
    with desk.store.unit_of_work(actor="t", reason="read") as uow:
        return list(uow.orders.for_run(run.id))


def _reconciled(desk: Desk, accounts: int) -> None:
    """Every account's book equals its ledger at the broker, and the omnibus account is flat."""
    for k in range(1, accounts + 1):
        account = AccountId(f"A{k}")
        with desk.store.unit_of_work(actor="t", reason="read") as uow:
            stored = uow.accounts.get(account)
            assert stored is not None
            held = dict(uow.holdings.positions(account))
        assert stored.cash == desk.broker.cash(account) and stored.cash >= 0
        assert held == dict(desk.broker.positions(account))
    cash, _, left = desk.broker.ledger.holdings(OMNIBUS)
    assert cash == 0 and left == {}
    assert OMNIBUS not in desk.broker.accounts()


def _block_desk(database_url: str, accounts: int, **sim_settings: Any) -> Desk:
    return make_desk(database_url, small_book(accounts), **sim_settings)


def test_a_batch_trades_one_block_per_symbol_and_side_and_allocates_it(database_url: str) -> None:
    desk = _block_desk(database_url, 3)
    run = _start(desk)
    done = desk.execute(run)
    assert done.state is RunState.COMPLETED, done.reason
    orders = _orders(desk, run)
    assert len(orders) == 6 and all(o.state is OrderState.FILLED for o in orders)
    # at the broker: two block orders of the omnibus account, none of the accounts' own
    at_broker = desk.broker.orders()
    assert [(o.client_order_id, o.account) for o in at_broker] == [
        (block_order_id(run.id, o.symbol, o.side), OMNIBUS)
        for o in sorted(orders, key=lambda o: o.side is Side.BUY)
        if o.account == "A1"
    ]
    assert all(not desk.broker.orders(AccountId(f"A{k}")) for k in range(1, 4))
    sell_block, buy_block = at_broker
    # each account's order records its part: the parts sum exactly to the block's fill
    for block in at_broker:
        mine = [o for o in orders if o.side is block.side]
        assert sum(o.filled_quantity for o in mine) == block.filled_quantity
        assert sum(o.filled_notional for o in mine) == block.filled_notional
    with desk.store.unit_of_work(actor="t", reason="read") as uow:
        fills = uow.fills.for_orders([o.client_order_id for o in orders])
    for o in orders:
        (fill,) = fills[o.client_order_id]
        assert (fill.quantity, amount_of(fill.quantity, fill.price)) == (
            o.filled_quantity,
            o.filled_notional,
        )
    assert sell_block.side is Side.SELL and buy_block.notional is not None
    with desk.store.unit_of_work(actor="t", reason="read") as uow:
        events = [e.reason for e in uow.runs.events(run.id)]
    assert sum("allocated to 3 account(s) pro rata" in e for e in events) == 2
    _reconciled(desk, 3)


def test_a_partly_filled_block_allocates_what_filled_and_returns_the_rest(
    database_url: str,
) -> None:
    """The sell block fills in parts a minute apart; the run waits 30 s, cancels it and
    allocates the first part; the unsold shares go back to their accounts."""
    desk = _block_desk(
        database_url, 3, partial_fills={"probability": 1, "max_parts": 3, "interval_seconds": 60}
    )
    run = _start(desk)
    done = desk.execute(run, max_wait_seconds=30)
    sell = block_order_id(run.id, next(iter(_orders(desk, run))).symbol, Side.SELL)
    assert done.state is RunState.TIMEOUT
    assert done.reason == f"still working after 30 s, canceled: {sell}"
    block = desk.broker.order(sell)
    assert block is not None and block.state is OrderState.CANCELED
    assert 0 < block.filled_quantity < (block.quantity or 0)
    sells = [o for o in _orders(desk, run) if o.side is Side.SELL]
    assert all(o.state is OrderState.CANCELED for o in sells)
    assert sum(o.filled_quantity for o in sells) == block.filled_quantity
    assert sum(o.filled_notional for o in sells) == block.filled_notional
    assert all(0 < o.filled_quantity < (o.quantity or 0) for o in sells)
    _reconciled(desk, 3)


@pytest.mark.parametrize(
    "fault",
    [
        {"timeout": {"probability": 1, "seconds": 30, "at_most": 1}},
        {"disconnect": {"probability": 1, "reached": 0, "at_most": 1}},  # never got there
        {"disconnect": {"probability": 1, "reached": 1, "at_most": 1}},  # got there, answer lost
    ],
    ids=["timeout", "lost-before", "lost-after"],
)
def test_a_block_whose_answer_is_lost_is_asked_for_not_sent_again(
    database_url: str, fault: dict[str, Any]
) -> None:
    desk = _block_desk(database_url, 2, faults=fault)
    run = _start(desk)
    done = desk.execute(run)
    assert done.state is RunState.COMPLETED, done.reason
    assert all(n == 1 for n in submits(desk).values())
    assert set(submits(desk)) == {o.client_order_id for o in desk.broker.orders()}
    _reconciled(desk, 2)


class _Killed(BaseException):
    """The process ends here (as a SIGKILL would: nothing after it runs)."""


def test_a_run_killed_before_its_allocation_resumes_without_sending_again(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = _block_desk(database_url, 3)
    run = _start(desk)
    real = type(desk.broker).allocate
    calls = {"n": 0}

    def allocate_then_die(self: Any, block: Any, allocations: Any) -> Any:
        calls["n"] += 1
        made = real(self, block, allocations)
        if calls["n"] == 1:
            raise _Killed  # the broker moved the ledgers; the book never heard
        return made

    monkeypatch.setattr(type(desk.broker), "allocate", allocate_then_die)
    with pytest.raises(_Killed):
        desk.execute(run)
    sells = [o for o in _orders(desk, run) if o.side is Side.SELL]
    assert all(o.state is OrderState.SUBMITTED for o in sells)
    done = desk.execute(run)  # rebal runs resume
    assert done.state is RunState.COMPLETED, done.reason
    assert all(n == 1 for n in submits(desk).values()), submits(desk)
    assert all(o.state is OrderState.FILLED for o in _orders(desk, run))
    _reconciled(desk, 3)


def test_canceling_a_run_cancels_its_blocks_and_allocates_what_filled(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = _block_desk(
        database_url, 2, partial_fills={"probability": 1, "max_parts": 2, "interval_seconds": 600}
    )
    run = _start(desk)

    def die(_seconds: float) -> None:
        raise _Killed  # the process ends while the sell block works

    monkeypatch.setattr(desk.clock, "sleep", die)
    with pytest.raises(_Killed):
        desk.execute(run)
    monkeypatch.undo()
    done = cancel_run(desk.store, desk.broker, run.id, clock=desk.clock, actor="test")
    assert done.state is RunState.CANCELED_MID_RUN
    sells = [o for o in _orders(desk, run) if o.side is Side.SELL]
    assert all(o.state is OrderState.CANCELED and o.filled_quantity > 0 for o in sells)
    (block,) = desk.broker.orders()
    assert block.state is OrderState.CANCELED
    assert sum(o.filled_quantity for o in sells) == block.filled_quantity
    _reconciled(desk, 2)


def test_a_block_the_market_rejects_moves_nothing(database_url: str) -> None:
    desk = _block_desk(database_url, 2, rejections={"symbols": ["VTI"], "reason": "halted"})
    run = _start(desk)
    done = desk.execute(run)
    assert done.state is RunState.COMPLETED_ADJUSTED, done.reason
    sells = [o for o in _orders(desk, run) if o.side is Side.SELL]
    assert [o.state for o in sells] == [OrderState.REJECTED] * 2
    assert (
        sells[0].reason
        == f"block {block_order_id(run.id, sells[0].symbol, Side.SELL)} rejected: halted"
    )
    assert all(desk.broker.positions(AccountId(f"A{k}"))["VTI"] == 40 for k in (1, 2))  # type: ignore[index]
    _reconciled(desk, 2)


def test_a_leg_its_account_cannot_fund_rejects_the_block(database_url: str) -> None:
    desk = _block_desk(database_url, 2)
    desk.broker.open_account(AccountId("A1"), Decimal("1000.00"), {})
    desk.broker.open_account(AccountId("A2"), Decimal("1000.00"), {})
    block = Order(
        client_order_id=ClientOrderId("B-BLOCK-BND-b"),
        account=OMNIBUS,
        symbol=Symbol("BND"),
        side=Side.BUY,
        notional=Money(Decimal("1500.00")),
    )
    legs = [
        BlockLeg(
            client_order_id=ClientOrderId("B-A1"),
            account=AccountId("A1"),
            notional=Money(Decimal("500.00")),
        ),
        BlockLeg(
            client_order_id=ClientOrderId("B-A2"),
            account=AccountId("A2"),
            notional=Money(Decimal("1000.01")),
        ),
    ]
    with pytest.raises(ValueError, match="do not add up"):
        desk.broker.submit_block(block, legs[:1])
    answer = desk.broker.submit_block(replace(block, notional=Money(Decimal("1500.01"))), legs)
    assert answer.state is OrderState.REJECTED
    assert answer.reason == (
        "insufficient buying power: block leg B-A2 needs 1000.01, account A2 has 1000.00"
    )
    assert desk.broker.cash(AccountId("A1")) == Decimal("1000.00")
    with pytest.raises(DuplicateOrder):
        desk.broker.submit_block(replace(block, notional=Money(Decimal("1500.01"))), legs)


@pytest.mark.parametrize(
    ("batch", "options", "message"),
    [
        (False, {}, "--block-orders is for a batch"),
        (True, {"whole_shares": True}, "--whole-shares"),
        (True, {"order_type": "limit"}, "--order-type limit"),
        (True, {"algo": "twap"}, "--algo"),
    ],
)
def test_block_orders_are_refused_where_they_do_not_apply(
    batch: bool, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        check_block_options(batch, options)
    check_block_options(True, {"order_type": "market", "algo": None})
