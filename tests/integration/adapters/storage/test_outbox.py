"""The outbox in the store: a notification is written in the transaction of the run event it
reports, so a rolled-back event leaves none and a committed one always has it; adding twice
queues once; delivery attempts are kept; on every store implementation."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rebal.adapters.memory.clock import SimulatedClock
from rebal.domain.ids import RunId
from rebal.domain.notification import DeliveryState, Notification, NotificationKind
from rebal.domain.run import Run, RunKey, RunState, RunType, ScopeKind
from rebal.ports.outbox import OutboxEntry
from rebal.ports.storage import Store

KEY = RunKey(ScopeKind.ACCOUNT, "A1", date(2026, 11, 20), RunType.REBALANCE, 1)


def _note(clock: SimulatedClock, number: int = 1, run: str = "r1", batch: str = "") -> Notification:
    return Notification(
        id=f"{batch}n{number}",
        kind=NotificationKind.REBALANCE,
        topic="run.completed",
        subject=f"run {run} rebalanced A1",
        created_at=clock.now() + timedelta(seconds=number),
        account="A1",
        run=run,
        payload={"trades": [{"symbol": "VTI", "quantity": "1.5"}]},
    )


def _start_with_notification(store: Store, clock: SimulatedClock, *, commit: bool) -> None:
    with store.unit_of_work(actor="t", reason="run r1") as uow:
        uow.runs.start(
            Run(
                id=RunId("r1"),
                key=KEY,
                state=RunState.QUEUED,
                created_at=clock.now(),
                updated_at=clock.now(),
            ),
            "asked for",
        )
        uow.outbox.add(_note(clock), ["webhook", "email"])
        if commit:
            uow.commit()


def _stored(store: Store) -> tuple[list[OutboxEntry], int]:
    with store.unit_of_work(actor="t", reason="read") as uow:
        run = uow.runs.get(RunId("r1"))
        return list(uow.outbox.entries()), 0 if run is None else len(uow.runs.events(run.id))


def test_a_rolled_back_event_leaves_no_notification(store: Store, clock: SimulatedClock) -> None:
    _start_with_notification(store, clock, commit=False)
    assert _stored(store) == ([], 0)


def test_a_committed_event_has_its_notification_on_each_channel(
    store: Store, clock: SimulatedClock
) -> None:
    _start_with_notification(store, clock, commit=True)
    entries, events = _stored(store)
    assert events == 1
    assert [(e.notification, e.channel, e.state, e.attempts) for e in entries] in (
        [(_note(clock), c, DeliveryState.PENDING, 0) for c in order]
        for order in (["webhook", "email"], ["email", "webhook"])
    )


def test_an_error_inside_the_unit_of_work_drops_event_and_notification(
    store: Store, clock: SimulatedClock
) -> None:
    with pytest.raises(RuntimeError), store.unit_of_work(actor="t", reason="r") as uow:
        uow.runs.start(
            Run(
                id=RunId("r1"),
                key=KEY,
                state=RunState.QUEUED,
                created_at=clock.now(),
                updated_at=clock.now(),
            ),
            "asked for",
        )
        uow.outbox.add(_note(clock), ["webhook"])
        raise RuntimeError("the broker went away")
    assert _stored(store) == ([], 0)


def test_adding_a_notification_again_keeps_the_first_and_its_delivery_state(
    store: Store, clock: SimulatedClock
) -> None:
    _start_with_notification(store, clock, commit=True)
    later = clock.now() + timedelta(minutes=5)
    with store.unit_of_work(actor="t", reason="deliver") as uow:
        (first,) = [e for e in uow.outbox.due(clock.now() + timedelta(1)) if e.channel == "email"]
        tried = OutboxEntry(
            notification=first.notification,
            channel="email",
            attempts=1,
            next_attempt_at=later,
            last_error="connection refused",
        )
        uow.outbox.record(tried)
        uow.outbox.add(_note(clock), ["email", "webhook"])
        uow.commit()
    with store.unit_of_work(actor="t", reason="read") as uow:
        assert len(uow.outbox.entries()) == 2
        assert [e.channel for e in uow.outbox.due(later - timedelta(seconds=1))] == ["webhook"]
        assert tried in uow.outbox.due(later)
        uow.outbox.record(
            OutboxEntry(
                notification=first.notification,
                channel="email",
                state=DeliveryState.DELIVERED,
                attempts=2,
                delivered_at=later,
            )
        )
        uow.commit()
    with store.unit_of_work(actor="t", reason="read") as uow:
        assert [e.channel for e in uow.outbox.due(later + timedelta(1))] == ["webhook"]
        (done,) = [e for e in uow.outbox.entries() if e.channel == "email"]
        assert (done.state, done.attempts, done.delivered_at) == (DeliveryState.DELIVERED, 2, later)


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.booleans(), min_size=1, max_size=6))
def test_every_committed_notification_and_no_other_is_stored(
    store: Store, clock: SimulatedClock, commits: list[bool]
) -> None:
    batch = f"{uuid.uuid4().hex[:8]}-"  # the store outlives one example
    for number, commit in enumerate(commits):
        with store.unit_of_work(actor="t", reason="r") as uow:
            uow.outbox.add(_note(clock, number, batch=batch), ["webhook"])
            if commit:
                uow.commit()
    with store.unit_of_work(actor="t", reason="read") as uow:
        stored = {
            e.notification.id for e in uow.outbox.entries() if e.notification.id.startswith(batch)
        }
    assert stored == {f"{batch}n{n}" for n, c in enumerate(commits) if c}
