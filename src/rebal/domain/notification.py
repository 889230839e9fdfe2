"""Notifications: what rebal tells people about what it did, and the alerts operations act on.

Every rebalance that happens produces a :class:`Notification` of kind ``rebalance`` (the account,
the run, its trades, why it ran); a blocked or postponed run, a delayed order or a reconciliation
break produces an ``alert``. Each has an ``id`` chosen once, when it is written to the outbox in
the same transaction as the event it reports, so a receiver deduplicates redelivered copies by it.
``payload`` is plain JSON data (strings for money and quantities, never floats).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class NotificationKind(StrEnum):
    """A report of a rebalance, or an alert for operations."""

    REBALANCE = "rebalance"
    ALERT = "alert"


class DeliveryState(StrEnum):
    """Where a notification is on its way out of the outbox."""

    PENDING = "pending"  # written, not yet delivered (or to be retried)
    DELIVERED = "delivered"
    FAILED = "failed"  # refused for good, or out of attempts: operations must look


@dataclass(frozen=True, slots=True, kw_only=True)
class Notification:
    """One message. ``topic`` says what happened (``run.completed``, ``run.blocked``,
    ``run.postponed``, ``order.delayed``, ``reconciliation.break``); ``subject`` is one line for a
    person."""

    id: str
    kind: NotificationKind
    topic: str
    subject: str
    created_at: datetime
    account: str | None = None
    run: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("a notification needs an id")
        if self.created_at.tzinfo is None:
            raise ValueError(f"notification {self.id}: time must be timezone-aware")
        json.dumps(self.payload)  # plain JSON data only: raises TypeError otherwise

    def document(self) -> dict[str, Any]:
        """The notification as the JSON object receivers get."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "topic": self.topic,
            "subject": self.subject,
            "created_at": self.created_at.isoformat(),
            "account": self.account,
            "run": self.run,
            "payload": dict(self.payload),
        }

    def body(self) -> bytes:
        """The exact bytes sent (and signed): canonical JSON, keys sorted."""
        return json.dumps(self.document(), sort_keys=True, separators=(",", ":")).encode()
