"""Pre-trade compliance in a run of several accounts, on the in-memory store, SQLite and
PostgreSQL: an account in violation is held back (nothing of it sent, its events and a
``run.held`` alert say why) while the others trade and reconcile, the run ending
``completed_adjusted``; a run whose every account fails, or whose violation is run-wide, is
blocked as a whole; a resume never sends a held account's orders."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from rundesk import START, Desk, make_desk, small_book

from rebal.compliance.codes import Code
from rebal.domain.account import Price
from rebal.domain.ids import AccountId, Symbol
from rebal.domain.order import Order, OrderState, Side
from rebal.domain.run import Run, RunState, ScopeKind
from rebal.ports.outbox import OutboxEntry
from rebal.services.compliance import ComplianceConfig, recorded_violations
from rebal.services.execution import ExecutionSettings, _Execution
from rebal.services.run_compliance import held_accounts
from rebal.services.runs import show_run

A1, A2, A3 = AccountId("A1"), AccountId("A2"), AccountId("A3")
BND = Symbol("BND")
#: Prices at which the runs' notional buys fill in whole hundredths of a share.
QUOTES = {"VTI": "250.00", "BND": "80.00"}
HELD = "blocked by compliance: RESTRICTED_SECURITY: BND is on the restricted list: no buy"


@pytest.fixture
def batch(store_backend: str | None, tmp_path: Path) -> Iterator[Desk]:
    """Three accounts, each all in VTI with 1,000 cash: each must sell VTI and buy BND."""
    book = small_book(3)
    at = START - timedelta(hours=1)
    book = replace(
        book,
        prices=tuple(Price(symbol=Symbol(s), price=Decimal(p), at=at) for s, p in QUOTES.items()),
    )
    made = make_desk(store_backend, book, ledger=f"sqlite:///{tmp_path / 'broker.db'}")
    yield made
    made.broker.close()


def _restrict(desk: Desk, account: AccountId) -> None:
    """``account``'s own record restricts BND (which every account of the run buys)."""
    with desk.store.unit_of_work(actor="test", reason="restrict") as uow:
        stored = uow.accounts.get(account)
        assert stored is not None
        uow.accounts.save([replace(stored, restricted=frozenset({BND}))])
        uow.commit()


def _orders(desk: Desk, run: Run) -> list[Order]:
    with desk.store.unit_of_work(actor="test", reason="read") as uow:
        return list(uow.orders.for_run(run.id))


def _alerts(desk: Desk, topic: str) -> list[OutboxEntry]:
    with desk.store.unit_of_work(actor="test", reason="read") as uow:
        return [e for e in uow.outbox.entries() if e.notification.topic == topic]


def _crashed(desk: Desk, run: Run) -> _Execution:
    """An execution of ``run`` by a process that dies after the steps the test calls."""
    return _Execution(
        store=desk.store,
        broker=desk.broker,
        run=run.id,
        clock=desk.clock,
        settings=ExecutionSettings(),
        actor="test",
        compliance=desk.compliance(),
    )


def _assert_held_a3(desk: Desk, done: Run, leg: str) -> None:
    """A3 held back at ``leg`` and sent nothing then; A1 and A2 traded and reconciled."""
    assert done.state is RunState.COMPLETED_ADJUSTED, done.reason
    assert "account A3 held back by compliance (RESTRICTED_SECURITY)" in done.reason
    sent = desk.broker.orders()
    assert {(o.account, o.side) for o in sent if o.state is OrderState.FILLED} >= {
        (a, s) for a in (A1, A2) for s in (Side.SELL, Side.BUY)
    }
    assert not [o for o in sent if o.account == A3 and o.side is Side.BUY]
    orders = _orders(desk, done)
    assert {o.state for o in orders if o.account != A3} == {OrderState.FILLED}
    events = show_run(desk.store, done.id, actor="test").events
    assert [(v.leg, v.account, v.code) for v in recorded_violations(events)] == [
        (leg, A3, Code.RESTRICTED_SECURITY)
    ]
    assert held_accounts(events) == {A3: HELD}
    assert any(
        e.reason.startswith(f"compliance held back 1 account(s) at the {leg} leg") for e in events
    )
    reconciled = 2 if leg == "sells" else 3  # A3's sells went before it was held at the buys
    assert any(
        e.reason.startswith(f"checked {reconciled} account(s): 0 reconciliation break(s)")
        for e in events
    )
    alerts = _alerts(desk, "run.held")
    assert {e.channel for e in alerts} == {"webhook", "email"}
    notice = alerts[0].notification
    assert (notice.id, notice.account, notice.run) == (f"{done.id}-A3-held", A3, done.id)
    assert notice.payload["leg"] == leg and notice.payload["reason"] == HELD
    assert [v["code"] for v in notice.payload["violations"]] == ["RESTRICTED_SECURITY"]
    assert not _alerts(desk, "run.blocked") and not _alerts(desk, "allocation.flagged")


def test_a_batch_holds_back_the_account_in_violation_and_the_others_trade(batch: Desk) -> None:
    run, _ = batch.start()
    _restrict(batch, A3)  # after the run was proposed (the planner leaves restricted ones out)
    done = batch.execute(run)
    _assert_held_a3(batch, done, "sells")
    assert batch.broker.orders(A3) == []
    held = [o for o in _orders(batch, done) if o.account == A3]
    assert [(o.side, o.state, o.reason) for o in held] == [(Side.SELL, OrderState.CANCELED, HELD)]
    assert held[0].client_order_id not in done.reason  # said once, by the account's line


def test_a_batch_holds_back_an_account_at_the_buy_leg(batch: Desk) -> None:
    """BND restricted for A3 once the sells went: A3 is held at the buys, its buy not sent."""
    run, _ = batch.start()
    crashed = _crashed(batch, run)
    crashed.begin()
    crashed.send(crashed.stored_run())  # every sell sent, then the process dies
    _restrict(batch, A3)
    batch.clock.advance(timedelta(minutes=1))
    done = batch.execute(run)
    _assert_held_a3(batch, done, "buys")
    buy = [o for o in _orders(batch, done) if o.account == A3 and o.side is Side.BUY]
    assert [(o.state, o.reason) for o in buy] == [(OrderState.CANCELED, HELD)]


def test_every_account_in_violation_blocks_the_run_as_a_whole(batch: Desk) -> None:
    done = batch.execute(
        batch.start()[0], compliance=batch.compliance(ComplianceConfig(restricted=frozenset({BND})))
    )
    assert done.state is RunState.ERROR
    assert done.reason.startswith("blocked by compliance: RESTRICTED_SECURITY")
    assert batch.broker.orders() == []
    orders = _orders(batch, done)
    assert {(o.state, o.reason) for o in orders} == {(OrderState.CANCELED, "blocked by compliance")}
    assert {e.notification.run for e in _alerts(batch, "run.blocked")} == {done.id}
    assert not _alerts(batch, "run.held")


def test_a_run_wide_violation_blocks_the_run_as_a_whole(batch: Desk) -> None:
    """The market closed: every account fails alike, the run is blocked (none held)."""
    run, _ = batch.start()
    _restrict(batch, A3)
    batch.clock.advance(timedelta(hours=8))  # 18:00 ET, after the close
    done = batch.execute(run)
    assert done.state is RunState.ERROR and "MARKET_CLOSED" in done.reason
    assert batch.broker.orders() == [] and not _alerts(batch, "run.held")


def test_a_single_account_run_is_blocked_as_before(batch: Desk) -> None:
    run, _ = batch.start(scope=ScopeKind.ACCOUNT, name="A3")
    _restrict(batch, A3)
    done = batch.execute(run)
    assert done.state is RunState.ERROR
    assert done.reason == HELD
    assert batch.broker.orders() == [] and not _alerts(batch, "run.held")


def test_a_resume_after_the_hold_never_sends_the_held_accounts_orders(batch: Desk) -> None:
    """The process dies right after holding A3 back, then after sending the others' sells:
    each resume sizes and sends nothing for A3."""
    run, _ = batch.start()
    _restrict(batch, A3)
    crashed = _crashed(batch, run)
    crashed.begin()
    assert crashed.comply(Side.SELL) is None  # A3 held back, then the process dies
    again = _crashed(batch, run)
    again.begin()
    assert again.comply(Side.SELL) is None  # nothing sent yet: A1 and A2 checked again, not A3
    again.send([o for o in again.stored_run() if o.state is OrderState.NEW])  # dies again
    done = batch.execute(run)
    _assert_held_a3(batch, done, "sells")
    assert batch.broker.orders(A3) == []
    assert [o.side for o in _orders(batch, done) if o.account == A3] == [Side.SELL]
