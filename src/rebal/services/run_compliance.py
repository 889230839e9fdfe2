"""Pre-trade compliance at a run's legs: check what is about to be sent, or end the run blocked.

:mod:`rebal.services.execution` calls :func:`comply` before it sends a leg. Before the sells,
while nothing of the run has been sent, the check covers the sells and every buy the proposal
intends (so a run that would break a rule at its buy leg sends nothing at all; the buys' sum is
held against the buying power only once they are sized, since they shrink to the cash raised);
before the buys,
it covers the buys as sized from the cash the sells actually raised, against the broker's buying
power then. A leg an earlier attempt of the run already began sending is not checked again.

Each violation is recorded as a run event (:func:`rebal.services.compliance.violation_note`).
When some accounts of the leg pass and the others break a rule that concerns them alone, the
failing accounts are held back (:func:`_stop`) and the others go: in one unit of work each held
account's unsent intents are canceled with the reason ``blocked by compliance: CODE: message;
...`` (its violations), an event names the accounts held, and a ``run.held`` alert per held
account goes to the outbox (:func:`rebal.services.run_notices.held_notice`). The run's events
are what keeps the hold: :func:`held_accounts` reads them back, so sizing the buys (also after a
crash and resume) leaves the held accounts out and the run's end lists them.

The whole run is blocked instead when every account of the leg fails (a single-account run
always), when a violation is run-wide (``MARKET_CLOSED``: the market's hours, or no calendar to
tell them), or when the broker does not answer (it is asked for its accounts once before any
account is held, so a fact missing because the broker is unreachable never holds only some
accounts): in one unit of work the run's unsent intents are canceled, the run ends ``error``
with the reason ``blocked by compliance: CODE: message; ...`` and its ``run.blocked`` alert goes
to the outbox (:mod:`rebal.services.run_notices`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rebal.compliance.codes import Code
from rebal.compliance.rules import ComplianceReport, Violation
from rebal.domain.ids import AccountId, RunId
from rebal.domain.order import Order, OrderState, Side
from rebal.domain.run import Run, RunEvent, RunState
from rebal.ports.broker import Broker, BrokerError
from rebal.ports.clock import Clock
from rebal.ports.storage import Store
from rebal.services.compliance import (
    RecordedViolation,
    RunCompliance,
    blocked_reason,
    check_leg,
    recorded_violations,
    violation_note,
)
from rebal.services.order_terms import OrderTerms
from rebal.services.run_notices import held_notice, queue_run_notices
from rebal.services.runs import client_order_id


def _leg(store: Store, run: RunId, side: Side, actor: str) -> list[Order]:
    """The orders to check before ``side`` is sent (empty: nothing to check), the accounts
    the run holds back left out."""
    with store.unit_of_work(actor=actor, reason=f"run {run}: read the {side} leg") as uow:
        held = held_accounts(uow.runs.events(run))  # never checked (nor sent) again
        stored = [o for o in uow.orders.for_run(run) if o.account not in held]
        found = uow.runs.get(run)
        proposal = uow.proposals.get(found.proposal) if found and found.proposal else None
        proposed = [
            o
            for o in (proposal.orders if proposal else ())
            if o.side is Side.BUY and o.account not in held
        ]
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


#: Violations that concern every account of a run alike: one of them blocks the whole run.
RUN_WIDE = frozenset({Code.MARKET_CLOSED})


def held_accounts(events: Iterable[RunEvent]) -> dict[AccountId, str]:
    """The accounts a run's ``events`` record as held back by compliance, each with its
    reason (``blocked by compliance: CODE: message; ...``), in the order they were held. Only
    a run not blocked as a whole holds accounts: every violation of it is an account's."""
    reports = [
        ComplianceReport(account, kept[0].at, tuple(Violation(v.code, v.message) for v in kept))
        for account, kept in _recorded_by_account(events).items()
    ]
    return {r.account: blocked_reason([r]) for r in reports}


def _recorded_by_account(events: Iterable[RunEvent]) -> dict[AccountId, list[RecordedViolation]]:
    """The violations the run's ``events`` record, by account, in the order they were held."""
    found: dict[AccountId, list[RecordedViolation]] = {}
    for recorded in recorded_violations(events):
        found.setdefault(recorded.account, []).append(recorded)
    return found


def held_lines(events: Iterable[RunEvent]) -> list[str]:
    """One line per account the run's ``events`` record as held back, naming the codes of its
    violations (their messages are the events themselves): what a finished run's reason says."""
    return [
        f"account {a} held back by compliance ({', '.join(dict.fromkeys(v.code for v in kept))})"
        for a, kept in _recorded_by_account(events).items()
    ]


def _answers(broker: Broker) -> bool:
    """Whether the broker answers at all (asked for its accounts)."""
    try:
        broker.accounts()
    except BrokerError:
        return False
    return True


def _stop(
    store: Store,
    run: RunId,
    leg: str,
    reports: Sequence[ComplianceReport],
    *,
    whole: bool,
    clock: Clock,
    actor: str,
    channels: Sequence[str],
) -> Run:
    """Record the violations of ``reports`` at ``leg`` and, in the same unit of work, block the
    run (``whole``: it ends ``error``) or hold back the accounts that failed (it goes on)."""
    now = clock.now()
    why = "blocked by compliance" if whole else "accounts held by compliance"
    with store.unit_of_work(actor=actor, reason=f"run {run}: {why}") as uow:
        current = uow.runs.get(run, for_update=True)
        assert current is not None
        if current.state.terminal:
            return current
        failed = [r for r in reports if not r.passed]
        for report in failed:
            for violation in report.violations:
                uow.runs.note(run, now, violation_note(leg, report.account, violation))
        unsent = [o for o in uow.orders.for_run(run) if o.state is OrderState.NEW]
        if whole:
            uow.orders.update([o.advance(OrderState.CANCELED, reason=why) for o in unsent])
            done = uow.runs.transition(run, RunState.ERROR, now, blocked_reason(reports))
            queue_run_notices(uow, done, channels)
            uow.commit()
            return done
        reasons = {r.account: blocked_reason([r]) for r in failed}
        uow.orders.update(
            [
                o.advance(OrderState.CANCELED, reason=reasons[o.account])
                for o in unsent
                if o.account in reasons
            ]
        )
        uow.runs.note(
            run,
            now,
            f"compliance held back {len(reasons)} account(s) at the {leg} leg, their unsent "
            f"orders canceled: {', '.join(reasons)}; the run's other accounts trade",
        )
        for report in failed:
            violations = [
                RecordedViolation(now, leg, report.account, v.code, v.message)
                for v in report.violations
            ]
            notice = held_notice(run, report.account, now, reasons[report.account], violations)
            uow.outbox.add(notice, channels)
        uow.commit()
        return current


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
    ``None`` when the leg may go (its failing accounts held back, when only some fail)."""
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
    failed = [r for r in reports if not r.passed]
    if not failed:
        return None
    leg = "sells" if side is Side.SELL else "buys"
    run_wide = any(r.codes & RUN_WIDE for r in failed)
    whole = len(failed) == len(reports) or run_wide or not _answers(broker)
    done = _stop(store, run, leg, reports, whole=whole, clock=clock, actor=actor, channels=channels)
    return done if done.state.terminal else None
