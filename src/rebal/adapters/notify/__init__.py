"""Notifiers: the channels notifications leave the outbox on (webhook, e-mail)."""
