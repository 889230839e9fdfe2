"""Fixtures of the notifier tests (defined in notifyparts)."""

from notifyparts import receiver, smtp

__all__ = ["receiver", "smtp"]
