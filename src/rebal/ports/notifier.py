"""The notifier port: one way of getting a notification to people (a webhook, e-mail).

A notifier makes one attempt per call. It raises :class:`RetryLater` when the attempt may
succeed later (no answer, a server error, too many requests) and :class:`Refused` when it never
will (a receiver that rejects the request); the outbox's delivery loop decides when to retry.
"""

from __future__ import annotations

from typing import Protocol

from rebal.domain.notification import Notification


class DeliveryError(Exception):
    """The notification was not delivered."""


class RetryLater(DeliveryError):
    """Not delivered this time; another attempt may succeed."""


class Refused(DeliveryError):
    """Not delivered, and trying again will not help."""


class Notifier(Protocol):
    """A channel notifications go out on."""

    name: str

    def send(self, notification: Notification) -> None:
        """Deliver ``notification`` once, or raise :class:`RetryLater` / :class:`Refused`."""
        ...
