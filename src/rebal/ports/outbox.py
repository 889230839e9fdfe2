"""The outbox port: notifications waiting to go out, one entry per notification and channel.

A notification is added in the same unit of work as the event it reports, so it is never lost and
never sent for an event that was rolled back. Delivery happens afterwards, entry by entry, and
records each attempt; an entry once delivered is never sent again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from rebal.domain.notification import DeliveryState, Notification


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxEntry:
    """A notification on its way out by one ``channel`` (a notifier's name)."""

    notification: Notification
    channel: str
    state: DeliveryState = DeliveryState.PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None  # None: due now
    delivered_at: datetime | None = None
    last_error: str = ""


class Outbox(Protocol):
    """Where notifications wait for delivery."""

    def add(self, notification: Notification, channels: Sequence[str]) -> None:
        """Queue ``notification`` on each channel; a notification id already queued on a channel
        is left as it is (adding is idempotent)."""
        ...

    def add_all(self, notifications: Iterable[Notification], channels: Sequence[str]) -> None:
        """:meth:`add` each of ``notifications``, in one write."""
        ...

    def due(self, now: datetime, limit: int = 100) -> Sequence[OutboxEntry]:
        """Pending entries whose next attempt is due at ``now``, oldest first."""
        ...

    def record(self, entry: OutboxEntry) -> None:
        """Store ``entry`` as it stands after an attempt."""
        ...

    def entries(self) -> Sequence[OutboxEntry]:
        """Every entry, oldest first."""
        ...
