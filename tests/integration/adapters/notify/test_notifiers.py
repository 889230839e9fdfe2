"""The webhook and e-mail notifiers against a real HTTP receiver and a real SMTP server."""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime, timedelta

import pytest
from notifyparts import Mailbox, Receiver, free_port, note
from pydantic import SecretStr

from rebal.adapters.memory.clock import SimulatedClock
from rebal.adapters.notify.email import EmailNotifier
from rebal.adapters.notify.webhook import (
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookNotifier,
    verify,
)
from rebal.ports.notifier import Refused, RetryLater

NOW = datetime(2026, 11, 20, 19, 31, tzinfo=UTC)
SECRET = "whsec-test-1"


def test_a_webhook_carries_the_id_and_a_signature_the_receiver_can_check(
    receiver: Receiver,
) -> None:
    WebhookNotifier(receiver.url, SecretStr(SECRET), SimulatedClock(NOW)).send(note())

    headers, body = receiver.requests[0]
    assert headers[ID_HEADER] == "n-1"
    assert json.loads(body)["payload"]["orders"][0]["quantity"] == "4.5"
    assert verify(SECRET, headers, body, NOW)
    assert not verify("another-secret", headers, body, NOW)
    assert not verify(SECRET, headers, body.replace(b"4.5", b"45"), NOW)
    assert not verify(SECRET, headers, body, NOW + timedelta(minutes=10))
    assert not verify(SECRET, {**headers, SIGNATURE_HEADER: ""}, body, NOW)
    assert headers[TIMESTAMP_HEADER] == str(int(NOW.timestamp()))


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, RetryLater), (503, RetryLater), (429, RetryLater), (400, Refused), (410, Refused)],
)
def test_a_webhook_answer_says_whether_to_retry(
    receiver: Receiver, status: int, error: type
) -> None:
    receiver.statuses = [status]
    with pytest.raises(error, match=str(status)):
        WebhookNotifier(receiver.url, SecretStr(SECRET), SimulatedClock(NOW)).send(note())


def test_a_webhook_nobody_answers_is_retried_later() -> None:
    url = f"http://127.0.0.1:{free_port()}/hooks"
    with pytest.raises(RetryLater, match="no answer"):
        WebhookNotifier(url, SecretStr(SECRET), SimulatedClock(NOW), timeout=1).send(note())


def test_the_secret_is_never_shown(receiver: Receiver) -> None:
    notifier = WebhookNotifier(receiver.url, SecretStr(SECRET), SimulatedClock(NOW))
    receiver.statuses = [500]
    with pytest.raises(RetryLater) as raised:
        notifier.send(note())
    assert SECRET not in repr(notifier) and SECRET not in str(raised.value)


def test_an_email_goes_to_every_recipient_with_the_notification_id(
    smtp: tuple[Mailbox, int],
) -> None:
    mailbox, port = smtp
    EmailNotifier(
        "127.0.0.1", port, "rebal@example.com", ["ops@example.com", "pm@example.com"]
    ).send(note())

    sender, recipients, content = mailbox.messages[0]
    mail = email.message_from_bytes(content)
    assert sender == "rebal@example.com"
    assert recipients == ["ops@example.com", "pm@example.com"]
    assert mail["Message-ID"] == "<n-1@rebal.notifications>"
    assert mail["Subject"] == "[rebal] ACC-1 rebalanced: 2 orders"
    text = mail.get_payload(decode=True).decode()
    assert "run:     run-7" in text and '"quantity": "4.5"' in text


def test_an_smtp_server_that_is_down_is_retried_later() -> None:
    notifier = EmailNotifier(
        "127.0.0.1", free_port(), "rebal@example.com", ["ops@example.com"], timeout=1
    )
    with pytest.raises(RetryLater):
        notifier.send(note())
