"""Notifications by e-mail (SMTP): a plain-text message per notification.

The message's ``Message-ID`` is derived from the notification's id, so a mail system (or a
person) can tell a redelivered copy from a new message. The text is the subject line, the
account and run, and the notification's JSON document. A temporary SMTP failure (4xx, no
connection) is worth retrying; a permanent one (5xx, a recipient refused) is a refusal.
"""

from __future__ import annotations

import json
import smtplib
from collections.abc import Sequence
from email.message import EmailMessage

from pydantic import SecretStr

from rebal.domain.notification import Notification
from rebal.ports.notifier import Refused, RetryLater


def message(notification: Notification, sender: str, recipients: Sequence[str]) -> EmailMessage:
    """The e-mail for ``notification``."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Subject"] = f"[rebal] {notification.subject}"
    mail["Message-ID"] = f"<{notification.id}@rebal.notifications>"
    mail["Date"] = notification.created_at.strftime("%a, %d %b %Y %H:%M:%S %z")
    lines = [
        notification.subject,
        "",
        f"kind:    {notification.kind.value} ({notification.topic})",
        f"account: {notification.account or '-'}",
        f"run:     {notification.run or '-'}",
        f"at:      {notification.created_at.isoformat()}",
        "",
        json.dumps(notification.document(), indent=2, sort_keys=True),
    ]
    mail.set_content("\n".join(lines) + "\n")
    return mail


class EmailNotifier:
    """Sends each notification to ``recipients`` through the SMTP server at ``host:port``."""

    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients: Sequence[str],
        *,
        starttls: bool = False,
        user: str | None = None,
        password: SecretStr | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not recipients:
            raise ValueError("e-mail notifications need at least one recipient")
        self._host, self._port = host, port
        self._sender, self._recipients = sender, list(recipients)
        self._starttls, self._user, self._password = starttls, user, password
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"EmailNotifier({self._host}:{self._port} -> {', '.join(self._recipients)})"

    def send(self, notification: Notification) -> None:
        mail = message(notification, self._sender, self._recipients)
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
                if self._starttls:
                    smtp.starttls()
                if self._user is not None and self._password is not None:
                    smtp.login(self._user, self._password.get_secret_value())
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused:
            raise Refused(f"e-mail: {', '.join(self._recipients)} refused") from None
        except smtplib.SMTPResponseException as exc:
            what = f"e-mail: the server answered {exc.smtp_code}"
            raise (Refused(what) if exc.smtp_code >= 500 else RetryLater(what)) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise RetryLater(f"e-mail: {type(exc).__name__} talking to {self._host}") from None
