"""Delivering the outbox: each due entry once through its channel, retried with backoff.

Called on every scheduler tick (and by ``rebal notifications``): it never sleeps, it records when
each entry is next due. An entry that fails ``RetryPolicy.max_attempts`` times, or is refused,
ends ``failed`` with the reason, for operations to look at.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from rebal.domain.notification import DeliveryState, Notification
from rebal.ports.notifier import Notifier, Refused, RetryLater
from rebal.ports.outbox import Outbox, OutboxEntry
from rebal.ports.storage import Store


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: the n-th retry waits ``first_delay × factor^(n-1)``, at most
    ``max_delay``; after ``max_attempts`` attempts the entry fails."""

    max_attempts: int = 8
    first_delay: timedelta = timedelta(seconds=30)
    factor: float = 2.0
    max_delay: timedelta = timedelta(hours=1)

    def delay(self, attempts: int) -> timedelta:
        """How long to wait after the ``attempts``-th failed attempt."""
        return min(self.first_delay * self.factor ** (attempts - 1), self.max_delay)


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one pass did."""

    delivered: int
    retrying: int
    failed: int


def deliver_due(
    outbox: Outbox,
    notifiers: Mapping[str, Notifier],
    now: datetime,
    policy: RetryPolicy = RetryPolicy(),
) -> DeliveryReport:
    """Attempt every entry due at ``now`` once."""
    delivered = retrying = failed = 0
    for entry in outbox.due(now):
        after = _attempt(entry, notifiers.get(entry.channel), now, policy)
        outbox.record(after)
        if after.state is DeliveryState.DELIVERED:
            delivered += 1
        elif after.state is DeliveryState.FAILED:
            failed += 1
        else:
            retrying += 1
    return DeliveryReport(delivered, retrying, failed)


def _attempt(
    entry: OutboxEntry, notifier: Notifier | None, now: datetime, policy: RetryPolicy
) -> OutboxEntry:
    attempts = entry.attempts + 1
    if notifier is None:
        return replace(
            entry, attempts=attempts, state=DeliveryState.FAILED,
            last_error=f"no notifier is configured for channel {entry.channel!r}",
        )  # fmt: skip
    try:
        notifier.send(entry.notification)
    except Refused as exc:
        return replace(entry, attempts=attempts, state=DeliveryState.FAILED, last_error=str(exc))
    except RetryLater as exc:
        if attempts >= policy.max_attempts:
            return replace(
                entry, attempts=attempts, state=DeliveryState.FAILED,
                last_error=f"{exc} (gave up after {attempts} attempts)",
            )  # fmt: skip
        return replace(
            entry, attempts=attempts, next_attempt_at=now + policy.delay(attempts),
            last_error=str(exc),
        )  # fmt: skip
    return replace(
        entry, attempts=attempts, state=DeliveryState.DELIVERED, delivered_at=now, last_error=""
    )


class StoredOutbox:
    """The store's outbox seen outside any one unit of work, for delivery: each read and each
    recorded attempt is a short unit of work of its own, so no transaction stays open (and no
    database lock is held) while a channel is being waited for."""

    def __init__(self, store: Store, *, actor: str) -> None:
        self._store = store
        self._actor = actor

    def add(self, notification: Notification, channels: Sequence[str]) -> None:
        self.add_all([notification], channels)

    def add_all(self, notifications: Iterable[Notification], channels: Sequence[str]) -> None:
        with self._store.unit_of_work(actor=self._actor, reason="queue a notification") as uow:
            uow.outbox.add_all(notifications, channels)
            uow.commit()

    def due(self, now: datetime, limit: int = 100) -> Sequence[OutboxEntry]:
        with self._store.unit_of_work(actor=self._actor, reason="notifications due") as uow:
            return uow.outbox.due(now, limit)

    def record(self, entry: OutboxEntry) -> None:
        with self._store.unit_of_work(actor=self._actor, reason="record a delivery") as uow:
            uow.outbox.record(entry)
            uow.commit()

    def entries(self) -> Sequence[OutboxEntry]:
        with self._store.unit_of_work(actor=self._actor, reason="list notifications") as uow:
            return uow.outbox.entries()
