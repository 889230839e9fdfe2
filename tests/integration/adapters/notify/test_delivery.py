"""The outbox's delivery: once per notification and channel, retried with backoff, failures kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from notifyparts import Receiver, note
from pydantic import SecretStr

from rebal.adapters.memory.clock import SimulatedClock
from rebal.adapters.memory.outbox import MemoryOutbox
from rebal.adapters.notify.webhook import WebhookNotifier
from rebal.domain.notification import DeliveryState
from rebal.services.notifications import RetryPolicy, deliver_due

NOW = datetime(2026, 11, 20, 19, 31, tzinfo=UTC)


def _webhook(receiver: Receiver) -> dict[str, WebhookNotifier]:
    return {"webhook": WebhookNotifier(receiver.url, SecretStr("s"), SimulatedClock(NOW))}


def test_a_notification_added_twice_is_delivered_once(receiver: Receiver) -> None:
    outbox = MemoryOutbox()
    outbox.add(note(), ["webhook"])
    outbox.add(note(), ["webhook"])

    first = deliver_due(outbox, _webhook(receiver), NOW)
    again = deliver_due(outbox, _webhook(receiver), NOW + timedelta(hours=1))

    assert (first.delivered, again.delivered) == (1, 0)
    assert len(receiver.requests) == 1
    assert outbox.entries()[0].delivered_at == NOW


def test_failures_are_retried_with_growing_waits_until_delivered(receiver: Receiver) -> None:
    receiver.statuses = [503, 503]
    outbox = MemoryOutbox()
    outbox.add(note(), ["webhook"])
    notifiers = _webhook(receiver)

    deliver_due(outbox, notifiers, NOW)
    assert outbox.entries()[0].next_attempt_at == NOW + timedelta(seconds=30)
    assert deliver_due(outbox, notifiers, NOW + timedelta(seconds=29)).retrying == 0
    deliver_due(outbox, notifiers, NOW + timedelta(seconds=30))
    assert outbox.entries()[0].next_attempt_at == NOW + timedelta(seconds=90)
    report = deliver_due(outbox, notifiers, NOW + timedelta(seconds=90))

    assert report.delivered == 1
    entry = outbox.entries()[0]
    assert (entry.state, entry.attempts) == (DeliveryState.DELIVERED, 3)
    ids = {headers["Rebal-Notification-Id"] for headers, _ in receiver.requests}
    assert ids == {"n-1"}


def test_an_entry_out_of_attempts_or_refused_fails_with_the_reason(receiver: Receiver) -> None:
    receiver.statuses = [500, 500, 400]
    outbox = MemoryOutbox()
    outbox.add(note("a"), ["webhook"])
    policy = RetryPolicy(max_attempts=2)
    notifiers = _webhook(receiver)

    deliver_due(outbox, notifiers, NOW, policy)
    deliver_due(outbox, notifiers, NOW + timedelta(minutes=5), policy)
    outbox.add(note("b"), ["webhook", "email"])
    deliver_due(outbox, notifiers, NOW + timedelta(minutes=10), policy)

    states = {(e.notification.id, e.channel): (e.state, e.last_error) for e in outbox.entries()}
    assert states[("a", "webhook")][0] is DeliveryState.FAILED
    assert "gave up after 2 attempts" in states[("a", "webhook")][1]
    assert states[("b", "webhook")] == (
        DeliveryState.FAILED,
        f"webhook {receiver.url} answered 400",
    )
    assert states[("b", "email")][0] is DeliveryState.FAILED
    assert "no notifier" in states[("b", "email")][1]


def test_the_backoff_grows_to_its_cap() -> None:
    policy = RetryPolicy()
    waits = [policy.delay(n).total_seconds() for n in range(1, 10)]
    assert waits == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
