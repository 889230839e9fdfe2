"""A finished run checks each account it traded: the book against the broker, and the
allocation reached against the one its proposal intended (within 0.5 percentage points); a break
or a flag is an event of the run, an operations alert in the outbox, shown by `rebal runs show`
and counted by `rebal reconcile`'s exit code."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

from rundesk import Desk, flow_desk, make_desk, small_book
from typer.testing import CliRunner

from rebal.cli.main import app
from rebal.domain.account import Price
from rebal.domain.ids import AccountId, Symbol
from rebal.domain.money import Money, Quantity
from rebal.domain.run import Run, RunState, ScopeKind
from rebal.ports.outbox import OutboxEntry
from rebal.services.reconcile import (
    AllocationCheck,
    RunFlag,
    allocation_flags,
    book_holdings,
    run_allocation,
    run_flags,
)
from rebal.services.runs import show_run


def _alerts(desk: Desk, topic: str) -> list[OutboxEntry]:
    """The alerts of ``topic`` on the webhook channel (each is on email too)."""
    with desk.store.unit_of_work(actor="t", reason="read") as uow:
        entries = [e for e in uow.outbox.entries() if e.notification.topic == topic]
    assert sorted(e.channel for e in entries) == sorted(["webhook", "email"] * (len(entries) // 2))
    return [e for e in entries if e.channel == "webhook"]


def _runs_show(desk: Desk, run: str) -> dict[str, object]:
    done = CliRunner().invoke(app, ["runs", "show", run, "--format", "json", "--db", desk.url])
    assert done.exit_code == 0, done.output
    shown: dict[str, object] = json.loads(done.stdout)["runs"][0]
    return shown


def test_a_run_that_reaches_its_allocation_says_so_and_flags_nothing(desk: Desk) -> None:
    run, _ = desk.start(policy="full")
    done = desk.execute(run)
    assert done.state is RunState.COMPLETED
    events = show_run(desk.store, run.id, actor="t").events
    assert events[-1].state is RunState.COMPLETED
    assert events[-2].reason == (
        "checked 2 account(s): 0 reconciliation break(s) with the broker, 0 allocation(s) more "
        "than 0.50 percentage points off the intended one"
    )
    assert _alerts(desk, "allocation.flagged") == _alerts(desk, "reconciliation.break") == []
    assert _runs_show(desk, run.id)["flags"] == []


def test_prices_moving_mid_run_flag_the_account_everywhere(desk: Desk) -> None:
    run, _ = desk.start(scope=ScopeKind.ACCOUNT, name="A1", policy="full")
    # VTI falls 20% a minute after the proposal: the sells raise less, BND is bought for less
    desk.clock.advance(timedelta(minutes=1))
    desk.prices.add(Price(symbol=Symbol("VTI"), price=Decimal("200.00"), at=desk.clock.now()))
    with desk.store.unit_of_work(actor="t", reason="price") as uow:
        uow.prices.record([Price(symbol=Symbol("VTI"), price=Decimal("200.00"), at=uow.now)])
        uow.commit()
    done = desk.execute(run)
    assert done.state is RunState.COMPLETED_ADJUSTED  # the flag does not change the state
    flagged = [e for e in show_run(desk.store, run.id, actor="t").events
               if e.reason.startswith("allocation flagged: account A1 ")]  # fmt: skip
    assert len(flagged) == 1
    # intended at today's prices: VTI 26.4 x 200 = 5,280, BND 4,400, no cash: 54.55% VTI;
    # reached: BND bought for 3,720 only: VTI 5,280 of 9,000 = 58.67%
    assert "VTI 58.67% vs 54.55% intended" in flagged[0].reason
    (alert,) = _alerts(desk, "allocation.flagged")
    assert alert.notification.account == "A1" and alert.notification.run == run.id
    assert alert.notification.kind.value == "alert"
    weights = {w["symbol"]: w for w in alert.notification.payload["weights"]}
    assert weights["VTI"]["reached"] == "0.586667"
    shown = _runs_show(desk, run.id)
    assert shown["flags"] == [{"kind": "allocation", "account": "A1", "reason": flagged[0].reason}]
    with desk.store.unit_of_work(actor="t", reason="read") as uow:
        standing = allocation_flags(uow)
    assert [(f.account, f.run) for f in standing] == [("A1", run.id)]
    # rebal reconcile: the book agrees with the broker, but the flag stands: exit 1
    done_cli = CliRunner().invoke(app, ["reconcile", "--format", "json", "--db", desk.url])
    assert done_cli.exit_code == 1, done_cli.output
    report = json.loads(done_cli.stdout)
    assert report["reconciled"] is True
    assert report["allocation_flags"] == [
        {"account": "A1", "run": run.id, "reason": flagged[0].reason}
    ]


def test_a_book_that_disagrees_with_the_broker_is_a_break_of_the_run(database_url: str) -> None:
    desk = make_desk(database_url, small_book(1))
    try:
        # the broker opened A1 before, with 500.00 less cash than the book says
        desk.broker.open_account(
            AccountId("A1"), Money(Decimal("500.00")), {Symbol("VTI"): Quantity(Decimal("40"))}
        )
        run, _ = desk.start(policy="full")
        desk.execute(run)
        events = show_run(desk.store, run.id, actor="t").events
        breaks = [e.reason for e in events if e.reason.startswith("reconciliation break: ")]
        # the buys were held to the broker's buying power (3,900.00): its cash is spent, the
        # book's 500.00 is not
        assert breaks == ["reconciliation break: account A1: cash book 500.00 broker 0.00"]
        (alert,) = _alerts(desk, "reconciliation.break")
        assert alert.notification.account == "A1" and alert.notification.run == run.id
        assert alert.notification.payload["differences"][0]["kind"] == "cash"
        flags = _runs_show(desk, run.id)["flags"]
        assert isinstance(flags, list) and flags[0]["kind"] == "reconciliation"
        # rebal reconcile finds the same break: exit 1 and one alert of its own, once
        for _ in range(2):
            done = CliRunner().invoke(app, ["reconcile", "--db", desk.url])
            assert done.exit_code == 1
        assert len(_alerts(desk, "reconciliation.break")) == 2  # the run's, then reconcile's
    finally:
        desk.store.engine.dispose()


def _allocation_flags(desk: Desk, run: Run) -> list[RunFlag]:
    events = show_run(desk.store, run.id, actor="t").events
    return [f for f in run_flags(run.id, events) if f.kind == "allocation"]


def _checks(desk: Desk, run: Run) -> list[AllocationCheck]:
    with desk.store.unit_of_work(actor="t", reason="read") as uow:
        return run_allocation(uow, run, book_holdings(uow))


def test_a_withdrawal_traded_as_proposed_is_not_flagged(database_url: str) -> None:
    desk = flow_desk(database_url, "-2000.00")
    try:
        run, _ = desk.start(policy="full")
        done = desk.execute(run)
        assert done.state is RunState.COMPLETED
        (check,) = _checks(desk, done)
        assert not check.flagged
        intended = {w.symbol: w.intended for w in check.weights}
        assert abs(sum(intended.values()) - 1) < Decimal("1e-20") and min(intended.values()) >= 0
        assert _allocation_flags(desk, run) == []
    finally:
        desk.store.engine.dispose()
