"""An outbox in memory, for tests and one-off runs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from rebal.domain.notification import DeliveryState, Notification
from rebal.ports.outbox import OutboxEntry


class MemoryOutbox:
    """The outbox port over a dictionary keyed by (notification id, channel).

    ``entries`` gives the dictionary to work on (the in-memory store passes its unit of work's
    working copy, so that a rollback drops what was added); by default the outbox has its own.
    """

    def __init__(
        self, entries: Callable[[], dict[tuple[str, str], OutboxEntry]] | None = None
    ) -> None:
        own: dict[tuple[str, str], OutboxEntry] = {}
        self._where = entries if entries is not None else (lambda: own)

    @property
    def _entries(self) -> dict[tuple[str, str], OutboxEntry]:
        return self._where()

    def add(self, notification: Notification, channels: Sequence[str]) -> None:
        self.add_all([notification], channels)

    def add_all(self, notifications: Iterable[Notification], channels: Sequence[str]) -> None:
        for notification in notifications:
            for channel in channels:
                self._entries.setdefault(
                    (notification.id, channel),
                    OutboxEntry(notification=notification, channel=channel),
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
