"""An outbox in memory, for tests and one-off runs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rebal.domain.notification import DeliveryState, Notification
from rebal.ports.outbox import OutboxEntry


class MemoryOutbox:
    """The outbox port over a dictionary keyed by (notification id, channel)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], OutboxEntry] = {}

    def add(self, notification: Notification, channels: Sequence[str]) -> None:
        for channel in channels:
            self._entries.setdefault(
                (notification.id, channel), OutboxEntry(notification=notification, channel=channel)
            )

    def due(self, now: datetime, limit: int = 100) -> Sequence[OutboxEntry]:
        pending = [
            e
            for e in self._entries.values()
            if e.state is DeliveryState.PENDING
            and (e.next_attempt_at is None or e.next_attempt_at <= now)
        ]
        return sorted(pending, key=lambda e: e.notification.created_at)[:limit]

    def record(self, entry: OutboxEntry) -> None:
        self._entries[(entry.notification.id, entry.channel)] = entry

    def entries(self) -> Sequence[OutboxEntry]:
        return sorted(self._entries.values(), key=lambda e: e.notification.created_at)
