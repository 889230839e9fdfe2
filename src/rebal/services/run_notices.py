"""The notifications a run's end produces, written to the outbox in the unit of work of its
final transition (so a run never ends without them, and none is left for a run that did not end).

* ``completed`` / ``completed_adjusted``: a ``rebalance`` notification (topic ``run.completed``)
  per account that traded: the account, the run, its trades (side, symbol, filled quantity and
  amount, as exact decimal strings) and the reason the account was rebalanced (the proposal's);
* ``timeout``: an ``alert`` (topic ``order.delayed``) naming the orders still working;
* ``error``: an ``alert`` (topic ``run.error``) with the reason; a run blocked by pre-trade
  compliance raises topic ``run.blocked`` instead, with its ``violations`` (each ``leg``,
  ``account``, ``code``, ``message``, as its events record them);
* a canceled run produces nothing (someone asked for it).

An account a run of several holds back for its violations, while the run's other accounts
trade, raises an ``alert`` (topic ``run.held``, :func:`held_notice`) per held account, with the
account, the leg, the reason and the ``violations`` as a ``run.blocked`` alert lists them,
written with the hold itself.

A scheduled run blocked by a pattern day trade and postponed to the next session's open raises
an ``alert`` (topic ``run.postponed``, :func:`postponed_notice`) with the reason and the time it
waits for, written with the postponement itself.

Besides, an ``alert`` for operations per account that a run's end check flagged
(:func:`check_notices`: topic ``allocation.flagged`` with the weights, ``reconciliation.break``
with the differences) and per account that ``rebal reconcile`` finds broken
(:func:`break_notices`, its id derived from the differences, so the same break found again
queues nothing new).

Ids are derived from the run, the account and the final state, so writing them again queues
nothing new and receivers deduplicate redelivered copies by them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from rebal.domain.formatting import number_text
from rebal.domain.ids import AccountId, RunId
from rebal.domain.notification import Notification, NotificationKind
from rebal.domain.order import Order, OrderState
from rebal.domain.run import Run, RunState
from rebal.ports.storage import UnitOfWork
from rebal.services.compliance import RecordedViolation, blocked, recorded_violations
from rebal.services.reconcile import AccountReconciliation, AllocationCheck, break_text

_ALERTS = {RunState.TIMEOUT: "order.delayed", RunState.ERROR: "run.error"}
#: The channels operations alerts go out on unless told otherwise.
CHANNELS = ("webhook", "email")


def run_notices(
    run: Run,
    orders: Sequence[Order],
    reasons: Mapping[AccountId, str],
    violations: Sequence[RecordedViolation] = (),
) -> list[Notification]:
    """What ``run``, just ended, tells people; ``reasons`` are why each account was proposed,
    ``violations`` what blocked it."""
    if run.state in (RunState.COMPLETED, RunState.COMPLETED_ADJUSTED):
        traded: dict[AccountId, list[dict[str, Any]]] = {}
        for o in orders:
            if o.filled_quantity > 0:
                traded.setdefault(o.account, []).append(_trade(o))
        return [
            Notification(
                id=f"{run.id}-{account}-{run.state}",
                kind=NotificationKind.REBALANCE,
                topic="run.completed",
                created_at=run.updated_at,
                account=account,
                run=run.id,
                subject=f"account {account} rebalanced by run {run.id}: {len(trades)} trades",
                payload={
                    "state": run.state.value,
                    "type": run.key.type.value,
                    "reason": reasons.get(account, ""),
                    "run_reason": run.reason,
                    "trades": trades,
                },
            )
            for account, trades in traded.items()
        ]
    topic = "run.blocked" if violations else _ALERTS.get(run.state)
    if topic is None:
        return []
    late = (  # a timed-out run cancels the orders still working when it gives up
        [o.client_order_id for o in orders
         if o.state is OrderState.CANCELED or not o.state.terminal]
        if run.state is RunState.TIMEOUT
        else []
    )  # fmt: skip
    accounts = sorted({o.account for o in orders})
    return [
        Notification(
            id=f"{run.id}-{run.state}",
            kind=NotificationKind.ALERT,
            topic=topic,
            created_at=run.updated_at,
            account=accounts[0] if len(accounts) == 1 else None,
            run=run.id,
            subject=f"run {run.id} ended {run.state}: {run.reason}",
            payload={
                "state": run.state.value,
                "type": run.key.type.value,
                "reason": run.reason,
                "accounts": accounts,
                "orders": late,
                **({"violations": [_violation(v) for v in violations]} if violations else {}),
            },
        )
    ]


def postponed_notice(
    run: RunId, account: AccountId, at: datetime, until: datetime, reason: str
) -> Notification:
    """The alert that ``run`` of ``account``, blocked at ``at`` for ``reason``, waits until
    ``until`` (the next session's open)."""
    return Notification(
        id=f"{run}-postponed",
        kind=NotificationKind.ALERT,
        topic="run.postponed",
        created_at=at,
        account=account,
        run=run,
        subject=f"run {run} of {account} postponed to {until.isoformat()}: {reason}",
        payload={"reason": reason, "postponed_to": until.isoformat()},
    )


def held_notice(
    run: RunId,
    account: AccountId,
    at: datetime,
    reason: str,
    violations: Sequence[RecordedViolation],
) -> Notification:
    """The alert that ``run`` held back ``account`` at ``at`` for ``violations`` (its
    ``reason`` ``blocked by compliance: ...``), its other accounts trading."""
    return Notification(
        id=f"{run}-{account}-held",
        kind=NotificationKind.ALERT,
        topic="run.held",
        created_at=at,
        account=account,
        run=run,
        subject=f"run {run} held back account {account}: {reason}",
        payload={
            "leg": violations[0].leg if violations else "",
            "reason": reason,
            "violations": [_violation(v) for v in violations],
        },
    )


def queue_run_notices(uow: UnitOfWork, run: Run, channels: Sequence[str]) -> None:
    """Add the notifications of ``run``'s end to the outbox of ``uow`` (the unit of work that
    ended it) on each of ``channels``."""
    if not channels:
        return
    proposal = uow.proposals.get(run.proposal) if run.proposal else None
    reasons = {a.account: a.reason for a in proposal.accounts} if proposal else {}
    violations = recorded_violations(uow.runs.events(run.id)) if blocked(run) else []
    uow.outbox.add_all(run_notices(run, uow.orders.for_run(run.id), reasons, violations), channels)


def _trade(order: Order) -> dict[str, Any]:
    return {
        "order": order.client_order_id,
        "side": order.side.value,
        "symbol": order.symbol,
        "quantity": number_text(order.filled_quantity),
        "amount": number_text(order.filled_notional, 2),
        "state": order.state.value,
    }


def check_notices(
    run: RunId,
    at: datetime,
    checks: Iterable[AllocationCheck],
    breaks: Iterable[AccountReconciliation],
) -> list[Notification]:
    """The alerts of a run's end check at ``at``: each account whose allocation is flagged,
    each whose book does not reconcile with the broker."""
    out = [
        Notification(
            id=f"{run}-{c.account}-allocation",
            kind=NotificationKind.ALERT,
            topic="allocation.flagged",
            created_at=at,
            account=c.account,
            run=run,
            subject=f"run {run}: {c.reason}",
            payload={
                "reason": c.reason,
                "weights": [
                    {
                        "symbol": w.symbol,
                        "intended": number_text(w.intended, 6),
                        "reached": None if w.reached is None else number_text(w.reached, 6),
                    }
                    for w in c.weights
                ],
            },
        )
        for c in checks
        if c.flagged
    ]
    return out + [
        _break(a, at, f"{run}-{a.account}-reconciliation", run) for a in breaks if not a.reconciled
    ]


def break_notices(compared: Iterable[AccountReconciliation], at: datetime) -> list[Notification]:
    """A ``reconciliation.break`` alert per account of ``compared`` that does not reconcile,
    its id derived from the differences (found again, it is the same notification)."""
    return [
        _break(a, at, f"reconcile-{a.account}-{hashlib.sha256(text.encode()).hexdigest()[:16]}")
        for a in compared
        if not a.reconciled and (text := break_text(a))
    ]


def _break(
    account: AccountReconciliation, at: datetime, id: str, run: str | None = None
) -> Notification:
    return Notification(
        id=id,
        kind=NotificationKind.ALERT,
        topic="reconciliation.break",
        created_at=at,
        account=account.account,
        run=run,
        subject=f"reconciliation break: {break_text(account)}",
        payload={
            "differences": [
                {
                    "kind": d.kind.value,
                    "symbol": d.symbol,
                    "book": None if d.book is None else number_text(d.book),
                    "broker": None if d.broker is None else number_text(d.broker),
                }
                for d in account.differences
            ]
        },
    )


def _violation(violation: RecordedViolation) -> dict[str, Any]:
    row = violation.to_row()
    row["at"] = row["at"].isoformat()
    return row
