"""A rebalance or invest_cash run funds the account's pending deposit at the simulated custodian
before it trades: the transfer is in the broker's ledger and in the book (the cash flow settled,
the cash grown, both in the audit trail), so the buys the deposit pays for are not cut, the run
reconciles and the end check flags nothing. Once only, across a crash; a deposit announced after
the run started waits for the next one. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from rundesk import Desk, flow_desk

from rebal.adapters.brokers.simulated import tables as sim
from rebal.core.trades import TradeRules
from rebal.domain.audit import Entity
from rebal.domain.cash import CashFlow, CashFlowState
from rebal.domain.ids import AccountId, CashFlowId, Symbol
from rebal.domain.money import Money, Quantity
from rebal.domain.order import Side
from rebal.domain.run import Run, RunState, RunType, ScopeKind
from rebal.ports.broker import Deposit
from rebal.services.reconcile import book_holdings, broker_holdings, compare, run_allocation
from rebal.services.runs import show_run

A1 = AccountId("A1")


@pytest.fixture
def desk(database_url: str) -> Iterator[Desk]:
    made = flow_desk(database_url, "5000.00")  # A1: 1,000.00 cash, 5,000.00 on its way
    yield made
    made.store.engine.dispose()


def _flow(desk: Desk) -> CashFlow:
    with desk.store.unit_of_work(actor="t", reason="read") as uow:
        (flow,) = uow.cash_flows.pending(A1)
    return flow


def _state(desk: Desk, flow: CashFlow) -> tuple[CashFlowState, Decimal, Decimal]:
    """The flow's state, and the account's pending cash and cash in the book."""
    with desk.store.unit_of_work(actor="t", reason="read") as uow:
        stored = uow.cash_flows.get(flow.id)
        account = uow.accounts.get(A1)
    assert stored is not None and account is not None
    return stored.state, account.pending_cash, account.cash


def _events(desk: Desk, run: Run) -> list[str]:
    return [e.reason for e in show_run(desk.store, run.id, actor="t").events]


def _cash_transfers(desk: Desk) -> list[tuple[Decimal, str | None]]:
    """The cash transfers in the broker's ledger: amount and reference, in order."""
    tr = sim.transfers.c
    with desk.broker.engine.connect() as conn:
        rows = conn.execute(
            sa.select(tr.amount, tr.reference).where(tr.symbol.is_(None)).order_by(tr.seq)
        )
        return [(r.amount, r.reference) for r in rows]


def _reconciles_and_is_not_flagged(desk: Desk, run: Run) -> None:
    with desk.store.unit_of_work(actor="t", reason="read") as uow:
        book = book_holdings(uow)
        checks = run_allocation(uow, run, book)
    held = broker_holdings(desk.broker, [A1])
    assert compare(A1, book[A1], held[A1]) == ()
    assert [c.account for c in checks] == [A1] and not checks[0].flagged


@pytest.mark.parametrize("kind", [RunType.REBALANCE, RunType.INVEST_CASH])
def test_a_run_funds_the_pending_deposit_before_it_trades(desk: Desk, kind: RunType) -> None:
    flow = _flow(desk)
    run, _ = desk.start(scope=ScopeKind.ACCOUNT, name="A1", type=kind, policy="full")
    done = desk.execute(run)
    # the buys the deposit pays for are sent as proposed: none cut by the broker's cash
    assert done.state is RunState.COMPLETED, done.reason
    orders = show_run(desk.store, run.id, actor="t").orders
    bought = sum((o.filled_notional for o in orders if o.side is Side.BUY), Decimal(0))
    assert bought > Decimal("5000.00")
    assert all(not o.reason.startswith("resized") for o in orders)
    # the broker's ledger: the opening with the book's settled cash, then the deposit
    assert _cash_transfers(desk) == [(Decimal("1000.00"), None), (Decimal("5000.00"), flow.id)]
    # the book: the flow settled, the cash grown by it (then spent by the run), audited
    state, pending, _ = _state(desk, flow)
    assert (state, pending) == (CashFlowState.SETTLED, Decimal("0.00"))
    with desk.store.unit_of_work(actor="t", reason="read") as uow:
        flow_audit = uow.audit.entries(Entity.CASH_FLOW, flow.id)
        account_audit = uow.audit.entries(Entity.ACCOUNT, "A1")
    why = f"run {run.id}: deposits funded at the broker"
    assert [(e.actor, e.reason) for e in flow_audit][-1] == ("test", why)
    funded = [e for e in account_audit if e.reason == why]
    assert (
        len(funded) == 1 and funded[0].after is not None and '"cash":"6000.00"' in funded[0].after
    )
    (event,) = [e for e in _events(desk, run) if e.startswith("funded ")]
    assert event == (
        "funded 1 pending deposit(s) at the broker before trading, each settled in the book: "
        f"A1 5,000.00 (cash flow {flow.id})"
    )
    _reconciles_and_is_not_flagged(desk, done)


def test_a_deposit_the_broker_already_took_is_not_credited_twice(desk: Desk) -> None:
    flow = _flow(desk)
    run, _ = desk.start(policy="full")
    # a process funded the deposit at the broker, then died before the book settled it
    desk.broker.open_account(A1, Money(Decimal("1000.00")), {Symbol("VTI"): Quantity(Decimal(40))})
    desk.broker.deposit([Deposit(reference=flow.id, account=A1, amount=flow.amount)])
    done = desk.execute(run)  # what `rebal runs resume` does
    assert done.state is RunState.COMPLETED, done.reason
    assert _cash_transfers(desk) == [(Decimal("1000.00"), None), (Decimal("5000.00"), flow.id)]
    assert _state(desk, flow)[0] is CashFlowState.SETTLED
    (event,) = [e for e in _events(desk, run) if e.startswith("funded ")]
    assert event.endswith(f"A1 5,000.00 (cash flow {flow.id}, already at the broker)")
    _reconciles_and_is_not_flagged(desk, done)


def test_a_deposit_announced_after_the_run_started_waits_for_the_next(desk: Desk) -> None:
    first = _flow(desk)
    run, _ = desk.start(policy="full")
    desk.clock.advance(timedelta(seconds=1))
    later = CashFlow(
        id=CashFlowId("late"),
        account=A1,
        amount=Money(Decimal("300.00")),
        created_at=desk.clock.now(),
    )
    with desk.store.unit_of_work(actor="t", reason="a deposit announced") as uow:
        uow.cash_flows.add(later)
        uow.commit()
    done = desk.execute(run)
    assert done.state is RunState.COMPLETED, done.reason
    assert _state(desk, first)[0] is CashFlowState.SETTLED
    state, pending, _ = _state(desk, later)
    assert (state, pending) == (CashFlowState.PENDING, Decimal("300.00"))
    assert desk.broker.cash(A1) == _state(desk, later)[2]  # book and broker agree on the cash


def test_a_raise_cash_run_moves_no_deposit(desk: Desk) -> None:
    flow = _flow(desk)
    run, _ = desk.start(
        scope=ScopeKind.ACCOUNT, name="A1", type=RunType.RAISE_CASH, amount=Money(Decimal("500"))
    )
    desk.execute(run)
    assert _state(desk, flow)[0] is CashFlowState.PENDING
    assert not any(e.startswith("funded ") for e in _events(desk, run))


def test_a_deposit_the_proposal_does_not_spend_stays_pending(desk: Desk) -> None:
    flow = _flow(desk)
    # every buy is below the minimum trade: the proposal invests nothing, so nothing is funded
    rules = TradeRules(min_trade_cents=10_000_000)
    run, _ = desk.start(scope=ScopeKind.ACCOUNT, name="A1", type=RunType.INVEST_CASH, rules=rules)
    desk.execute(run)
    assert show_run(desk.store, run.id, actor="t").orders == ()
    assert _state(desk, flow)[:2] == (CashFlowState.PENDING, Decimal("5000.00"))
    assert not any(e.startswith("funded ") for e in _events(desk, run))
