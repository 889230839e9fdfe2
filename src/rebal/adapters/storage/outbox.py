"""The notifications outbox on the database (:mod:`rebal.ports.outbox`).

The outbox is a repository of the unit of work: a notification is added on the same connection
and in the same transaction as the run event it reports, so a rolled-back event leaves no
notification and a committed one always has it. Adding is ``INSERT ... ON CONFLICT DO NOTHING``
on (firm, notification id, channel), so a notification written twice is queued once; the
notifications of one event (a run's end, its end check) go in one executemany.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from rebal.adapters.storage import tables as t
from rebal.adapters.storage.repositories import SqlRepository
from rebal.domain.notification import DeliveryState, Notification, NotificationKind
from rebal.ports.outbox import OutboxEntry

_ORDER = (t.outbox.c.created_at, t.outbox.c.notification_id, t.outbox.c.channel)


class SqlOutbox(SqlRepository):
    """:class:`rebal.ports.outbox.Outbox` in the ``outbox`` table."""

    def add(self, notification: Notification, channels: Sequence[str]) -> None:
        self.add_all([notification], channels)

    def add_all(self, notifications: Iterable[Notification], channels: Sequence[str]) -> None:
        rows = {
            (n.id, channel): {
                "firm_id": self._firm,
                "notification_id": n.id,
                "channel": channel,
                "kind": n.kind.value,
                "topic": n.topic,
                "subject": n.subject,
                "created_at": n.created_at,
                "account_id": n.account,
                "run_id": n.run,
                "payload": json.dumps(dict(n.payload), sort_keys=True),
                "state": DeliveryState.PENDING.value,
                "attempts": 0,
                "next_attempt_at": None,
                "delivered_at": None,
                "last_error": "",
            }
            for n in notifications
            for channel in channels
        }
        if not rows:
            return
        insert = (postgresql.insert if self._uow.dialect == "postgresql" else sqlite.insert)(
            t.outbox
        )
        self._uow.execute(insert.on_conflict_do_nothing(), list(rows.values()))

    def due(self, now: datetime, limit: int = 100) -> Sequence[OutboxEntry]:
        o = t.outbox.c
        query = (
            sa.select(t.outbox)
            .where(
                o.firm_id == self._firm,
                o.state == DeliveryState.PENDING.value,
                sa.or_(o.next_attempt_at.is_(None), o.next_attempt_at <= now),
            )
            .order_by(*_ORDER)
            .limit(limit)
        )
        return [_entry(row) for row in self._rows(query)]

    def record(self, entry: OutboxEntry) -> None:
        o = t.outbox.c
        self._uow.execute(
            sa.update(t.outbox)
            .where(
                o.firm_id == self._firm,
                o.notification_id == entry.notification.id,
                o.channel == entry.channel,
            )
            .values(
                state=entry.state.value,
                attempts=entry.attempts,
                next_attempt_at=entry.next_attempt_at,
                delivered_at=entry.delivered_at,
                last_error=entry.last_error,
            )
        )

    def entries(self) -> Sequence[OutboxEntry]:
        query = sa.select(t.outbox).where(t.outbox.c.firm_id == self._firm).order_by(*_ORDER)
        return [_entry(row) for row in self._rows(query)]


def _entry(row: sa.Row[Any]) -> OutboxEntry:
    notification = Notification(
        id=row.notification_id,
        kind=NotificationKind(row.kind),
        topic=row.topic,
        subject=row.subject,
        created_at=row.created_at,
        account=row.account_id,
        run=row.run_id,
        payload=json.loads(row.payload),
    )
    return OutboxEntry(
        notification=notification,
        channel=row.channel,
        state=DeliveryState(row.state),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
        last_error=row.last_error,
    )
