"""Runs end to end on the store and the simulated broker: start (idempotent, bad input),
execution (sells first, buys from the cash raised), the book from fills, cancel, faults."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from rundesk import START, Desk, d, make_desk, small_book

from rebal.domain.account import Holding, Price
from rebal.domain.book import BookSnapshot
from rebal.domain.ids import AccountId, RunId, Symbol
from rebal.domain.money import Money, Quantity
from rebal.domain.order import OrderState, Side
from rebal.domain.run import (
    TRANSITIONS,
    IllegalRunTransition,
    RunState,
    RunType,
    ScopeKind,
    check_transition,
)
from rebal.services.execution import cancel_run
from rebal.services.reconcile import book_holdings, run_allocation
from rebal.services.runs import NOT_TRADED, RunInputError, show_run


def _book(desk: Desk, account: str) -> tuple[Decimal, dict[Symbol, Decimal]]:
    with desk.store.unit_of_work(actor="t", reason="read") as uow:
        acct = uow.accounts.get(AccountId(account))
        assert acct is not None
        return acct.cash, dict(uow.holdings.positions(AccountId(account)))


@pytest.mark.parametrize("current", list(RunState))
def test_only_the_table_s_transitions_happen(current: RunState) -> None:
    for new in RunState:
        if new in TRANSITIONS[current]:
            check_transition(RunId("r"), current, new)
        else:
            with pytest.raises(IllegalRunTransition):
                check_transition(RunId("r"), current, new)


def test_starting_the_same_run_again_returns_the_stored_one(desk: Desk) -> None:
    run, new = desk.start()
    again, new_again = desk.start()
    assert new and not new_again
    assert again.id == run.id and again.state is RunState.QUEUED
    view = show_run(desk.store, run.id, actor="t")
    sells = [o for o in view.orders if o.side is Side.SELL]
    assert {o.account for o in sells} == {"A1", "A2"}
    assert all(o.state is OrderState.NEW for o in sells)  # intents, nothing sent
    assert desk.broker.orders() == []


def test_a_run_sells_first_then_buys_from_the_cash_raised(desk: Desk) -> None:
    run, _ = desk.start(policy="full")
    done = desk.execute(run)
    assert done.state is RunState.COMPLETED, done.reason
    view = show_run(desk.store, run.id, actor="t")
    at_broker = desk.broker.orders()
    # every sell reached the broker before any buy
    sides = [o.side for o in at_broker]
    assert sides == sorted(sides, key=lambda s: s is Side.BUY)
    assert len({o.client_order_id for o in at_broker}) == len(at_broker) == len(view.orders)
    for account in ("A1", "A2"):
        cash, held = _book(desk, account)
        # the book is the broker's view, exactly
        assert cash == desk.broker.cash(AccountId(account))
        assert held == dict(desk.broker.positions(AccountId(account)))
        # 10,000 + 1,000 at 60/40: VTI 6,600 (26.4 sh), BND 4,400 (60.689655 sh)
        assert held[Symbol("VTI")] == d("26.4")
        assert abs(held[Symbol("BND")] * d("72.50") - d("4400")) < d("0.10")
    states = [e.state for e in view.events]
    assert states[0] is RunState.QUEUED and states[-1] is RunState.COMPLETED
    assert RunState.IN_PROGRESS in states
    with desk.store.unit_of_work(actor="t", reason="check") as uow:
        checks = run_allocation(uow, done, book_holdings(uow))
    assert [c.account for c in checks] == ["A1", "A2"]
    assert not any(c.flagged for c in checks)
    assert "0 reconciliation break(s) with the broker, 0 allocation(s)" in view.events[-2].reason


def test_buys_shrink_when_the_sells_raise_less_than_estimated(desk: Desk) -> None:
    run, _ = desk.start(scope=ScopeKind.ACCOUNT, name="A1", policy="full")
    desk.prices.add(Price(symbol=Symbol("VTI"), price=d("200.00"), at=desk.clock.now()))
    done = desk.execute(run)
    assert done.state is RunState.COMPLETED_ADJUSTED
    assert "resized" in done.reason
    cash, _ = _book(desk, "A1")
    assert cash >= 0  # never overspent
    assert cash == desk.broker.cash(AccountId("A1"))
    # 13.6 VTI sold at 200 raised 2,720, 680 short of the estimate: BND buys 4,400 - 680
    buy = [o for o in show_run(desk.store, run.id, actor="t").orders if o.side is Side.BUY]
    assert [o.notional for o in buy] == [d("3720.00")]


def test_bad_input_is_refused_and_nothing_is_written(desk: Desk) -> None:
    for scope, name, message in (
        (ScopeKind.ACCOUNT, "NOPE", "unknown account 'NOPE'"),
        (ScopeKind.MODEL, "nope", "unknown model 'nope'"),
    ):
        with pytest.raises(RunInputError, match=message):
            desk.start(scope=scope, name=name)
    desk.clock.advance(timedelta(days=3))
    with pytest.raises(RunInputError, match="stale"):
        desk.start()
    with desk.store.unit_of_work(actor="t", reason="check") as uow:
        assert uow.runs.list() == [] and uow.proposals.list() == []


def test_rejected_orders_end_the_run_adjusted_with_the_reason(database_url: str) -> None:
    desk = make_desk(database_url, small_book(1), rejections={"symbols": ["BND"]})
    run, _ = desk.start()
    done = desk.execute(run)
    assert done.state is RunState.COMPLETED_ADJUSTED
    assert "rejected" in done.reason and "BND" in done.reason
    cash, _ = _book(desk, "A1")
    assert cash == desk.broker.cash(AccountId("A1"))


def test_cancel_a_queued_run_sends_nothing(desk: Desk) -> None:
    run, _ = desk.start()
    done = cancel_run(desk.store, desk.broker, run.id, clock=desk.clock, actor="t")
    assert done.state is RunState.CANCELED
    assert desk.execute(run).state is RunState.CANCELED
    assert desk.broker.orders() == []


def test_liquidation_sells_everything(desk: Desk) -> None:
    run, _ = desk.start(scope=ScopeKind.ACCOUNT, name="A2", type=RunType.LIQUIDATION)
    done = desk.execute(run)
    assert done.state is RunState.COMPLETED, done.reason
    cash, held = _book(desk, "A2")
    assert held == {} and cash == d("11000.00")


def _book_with(**changes: object) -> BookSnapshot:
    """:func:`small_book` of two accounts with ``changes`` made to A1 (cash, holdings)."""
    book = small_book(2)
    first = replace(book.accounts[0], **{k: v for k, v in changes.items() if k != "holdings"})
    extra = changes.get("holdings", ())
    assert isinstance(extra, tuple)
    return replace(book, accounts=(first, *book.accounts[1:]), holdings=book.holdings + extra)


def test_an_overdrawn_account_is_left_out_with_its_reason_and_the_rest_trades(
    database_url: str,
) -> None:
    desk = make_desk(database_url, _book_with(cash=Money(d("-610.28"))))
    try:
        run, _ = desk.start()
        done = desk.execute(run)
        assert done.state is RunState.COMPLETED
        view = show_run(desk.store, run.id, actor="t")
        outcome = {o.account: o for o in view.outcomes}
        assert outcome[AccountId("A1")].status == NOT_TRADED
        assert outcome[AccountId("A1")].reason == (
            "not traded: the account's cash is negative (-610.28) and the broker keeps no "
            "overdrafts; bring the cash to zero or more, then run it again"
        )
        assert outcome[AccountId("A2")].status != NOT_TRADED
        assert {o.account for o in view.orders} == {AccountId("A2")}
        assert all(o.state is OrderState.FILLED for o in view.orders)
        assert "1 account(s) left out: A1 not traded" in view.events[0].reason
        assert AccountId("A1") not in desk.broker.accounts()
        assert _book(desk, "A1") == (d("-610.28"), {Symbol("VTI"): d("40")})
        # the same account alone: a run with no orders that says why
        alone, _ = desk.start(scope=ScopeKind.ACCOUNT, name="A1")
        assert desk.execute(alone).state is RunState.COMPLETED
        shown = show_run(desk.store, alone.id, actor="t")
        assert shown.orders == () and [o.status for o in shown.outcomes] == [NOT_TRADED]
    finally:
        desk.store.engine.dispose()


def test_a_held_symbol_with_no_price_leaves_its_account_untraded_not_the_batch(
    database_url: str,
) -> None:
    delisted = Holding(
        account=AccountId("A1"),
        symbol=Symbol("XDELX"),
        quantity=Quantity(d("10")),
        cost_basis=Money(d("100.00")),
        acquired=START.date() - timedelta(days=400),
    )
    desk = make_desk(database_url, _book_with(holdings=(delisted,)))
    try:
        run, _ = desk.start()
        assert desk.execute(run).state is RunState.COMPLETED
        view = show_run(desk.store, run.id, actor="t")
        outcome = {o.account: o for o in view.outcomes}
        assert (outcome[AccountId("A1")].status, outcome[AccountId("A1")].reason) == (
            "unable_to_check",
            "no price for XDELX",
        )
        assert {o.account for o in view.orders} == {AccountId("A2")}
        alone, _ = desk.start(scope=ScopeKind.ACCOUNT, name="A1")
        desk.execute(alone)
        shown = show_run(desk.store, alone.id, actor="t")
        assert shown.orders == ()
        assert [(o.status, o.reason) for o in shown.outcomes] == [
            ("unable_to_check", "no price for XDELX")
        ]
        # a price that exists but is stale still refuses the run
        desk.clock.advance(timedelta(days=3))
        with pytest.raises(RunInputError, match="the price of BND is stale"):
            desk.start(scope=ScopeKind.ACCOUNT, name="A2")
    finally:
        desk.store.engine.dispose()
