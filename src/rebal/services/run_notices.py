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

Ids are derived from the run, the account and the final state, so writing them again queues
nothing new and receivers deduplicate redelivered copies by them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rebal.domain.formatting import number_text
from rebal.domain.ids import AccountId
from rebal.domain.notification import Notification, NotificationKind
from rebal.domain.order import Order, OrderState
from rebal.domain.run import Run, RunState
from rebal.ports.storage import UnitOfWork
from rebal.services.compliance import RecordedViolation, recorded_violations

_ALERTS = {RunState.TIMEOUT: "order.delayed", RunState.ERROR: "run.error"}


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


def queue_run_notices(uow: UnitOfWork, run: Run, channels: Sequence[str]) -> None:
    """Add the notifications of ``run``'s end to the outbox of ``uow`` (the unit of work that
    ended it) on each of ``channels``."""
    if not channels:
        return
    proposal = uow.proposals.get(run.proposal) if run.proposal else None
    reasons = {a.account: a.reason for a in proposal.accounts} if proposal else {}
    blocked = recorded_violations(uow.runs.events(run.id)) if run.state is RunState.ERROR else []
    for notice in run_notices(run, uow.orders.for_run(run.id), reasons, blocked):
        uow.outbox.add(notice, channels)


def _trade(order: Order) -> dict[str, Any]:
    return {
        "order": order.client_order_id,
        "side": order.side.value,
        "symbol": order.symbol,
        "quantity": number_text(order.filled_quantity),
        "amount": number_text(order.filled_notional, 2),
        "state": order.state.value,
    }


def _violation(violation: RecordedViolation) -> dict[str, Any]:
    row = violation.to_row()
    row["at"] = row["at"].isoformat()
    return row
