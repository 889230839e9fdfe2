"""Pre-trade compliance at a run's legs: check what is about to be sent, or end the run blocked.

:mod:`rebal.services.execution` calls :func:`comply` before it sends a leg. Before the sells,
while nothing of the run has been sent, the check covers the sells and every buy the proposal
intends (so a run that would break a rule at its buy leg sends nothing at all; the buys' sum is
held against the buying power only once they are sized, since they shrink to the cash raised);
before the buys,
it covers the buys as sized from the cash the sells actually raised, against the broker's buying
power then. A leg an earlier attempt of the run already began sending is not checked again.

A run with any violation is blocked: in one unit of work each violation is recorded as a run
event (:func:`rebal.services.compliance.violation_note`), the run's unsent intents are canceled,
the run ends ``error`` with the reason ``blocked by compliance: CODE: message; ...`` and its
``run.blocked`` alert goes to the outbox (:mod:`rebal.services.run_notices`).
"""

from __future__ import annotations

from collections.abc import Sequence

from rebal.compliance.rules import ComplianceReport
from rebal.domain.ids import RunId
from rebal.domain.order import Order, OrderState, Side
from rebal.domain.run import Run, RunState
from rebal.ports.broker import Broker
from rebal.ports.clock import Clock
from rebal.ports.storage import Store
from rebal.services.compliance import RunCompliance, blocked_reason, check_leg, violation_note
from rebal.services.order_terms import OrderTerms
from rebal.services.run_notices import queue_run_notices
from rebal.services.runs import client_order_id


def _leg(store: Store, run: RunId, side: Side, actor: str) -> list[Order]:
    """The orders to check before ``side`` is sent (empty: nothing to check)."""
    with store.unit_of_work(actor=actor, reason=f"run {run}: read the {side} leg") as uow:
        stored = list(uow.orders.for_run(run))
        found = uow.runs.get(run)
        proposal = uow.proposals.get(found.proposal) if found and found.proposal else None
        proposed = [o for o in (proposal.orders if proposal else ()) if o.side is Side.BUY]
        quotes = (
            uow.prices.quotes({o.symbol for o in proposed}, proposal.as_of)
            if proposal and side is Side.SELL
            else {}
        )
    if side is Side.BUY:
        buys = [o for o in stored if o.side is Side.BUY]
        return buys if all(o.state is OrderState.NEW for o in buys) else []
    if any(o.state is not OrderState.NEW for o in stored):
        return []
    # the buys as the run will send them: with its order terms (a limit from the proposal's
    # quote until the buy leg prices them, the extended-hours flag); a buy the store holds no
    # quote of at the proposal's time is checked without them
    terms = OrderTerms.of_config(proposal.config if proposal else None)
    intended = [
        Order(
            client_order_id=client_order_id(run, o.account, o.symbol, Side.BUY),
            account=o.account,
            symbol=o.symbol,
            side=Side.BUY,
            run=run,
            quantity=o.quantity,
            notional=o.notional,
            reason="proposed",
            **(terms.fields(Side.BUY, quotes[o.symbol].price) if o.symbol in quotes else {}),
        )
        for o in proposed
    ]
    return [*(o for o in stored if o.side is Side.SELL), *intended]


def _block(
    store: Store,
    run: RunId,
    leg: str,
    reports: Sequence[ComplianceReport],
    *,
    clock: Clock,
    actor: str,
    channels: Sequence[str],
) -> Run:
    now = clock.now()
    with store.unit_of_work(actor=actor, reason=f"run {run}: blocked by compliance") as uow:
        current = uow.runs.get(run, for_update=True)
        assert current is not None
        if current.state.terminal:
            return current
        for report in reports:
            for violation in report.violations:
                uow.runs.note(run, now, violation_note(leg, report.account, violation))
        uow.orders.update(
            [
                o.advance(OrderState.CANCELED, reason="blocked by compliance")
                for o in uow.orders.for_run(run)
                if o.state is OrderState.NEW
            ]
        )
        done = uow.runs.transition(run, RunState.ERROR, now, blocked_reason(reports))
        queue_run_notices(uow, done, channels)
        uow.commit()
        return done


def comply(
    store: Store,
    broker: Broker,
    run: RunId,
    side: Side,
    compliance: RunCompliance,
    *,
    clock: Clock,
    actor: str,
    channels: Sequence[str],
) -> Run | None:
    """Check ``run``'s ``side`` leg about to be sent: the run, ended ``error``, when blocked;
    ``None`` when the leg may go."""
    orders = _leg(store, run, side, actor)
    if not orders:
        return None
    reports = check_leg(
        store,
        broker,
        compliance,
        orders,
        now=clock.now(),
        actor=actor,
        resized_buys=side is Side.SELL,
    )
    if all(r.passed for r in reports):
        return None
    leg = "sells" if side is Side.SELL else "buys"
    return _block(store, run, leg, reports, clock=clock, actor=actor, channels=channels)
