"""Notifications by webhook: an HTTP POST of the notification's JSON, signed with HMAC-SHA256.

Headers the receiver gets:

* ``Rebal-Notification-Id``: the notification's id; a redelivered copy carries the same one, so a
  receiver that has seen it drops it;
* ``Rebal-Timestamp``: when this attempt was signed, in whole seconds since the epoch (UTC);
* ``Rebal-Signature``: ``sha256=`` and the hex HMAC-SHA256, keyed by the shared secret, of the
  timestamp, a full stop, and the exact body bytes. :func:`verify` is the receiver's check (it also
  refuses a timestamp too far from its own clock, so a captured request cannot be replayed later).

A 2xx answer is delivered; no answer, 408, 429 or a 5xx is worth retrying; any other answer is a
refusal.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime

import requests
from pydantic import SecretStr

from rebal.domain.notification import Notification
from rebal.ports.clock import Clock
from rebal.ports.notifier import Refused, RetryLater

ID_HEADER = "Rebal-Notification-Id"
TIMESTAMP_HEADER = "Rebal-Timestamp"
SIGNATURE_HEADER = "Rebal-Signature"
_RETRY_STATUSES = frozenset({408, 425, 429})


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Rebal-Signature`` value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str, headers: Mapping[str, str], body: bytes, now: datetime, tolerance: int = 300
) -> bool:
    """Whether a received webhook is genuine: signed with ``secret`` over this very ``body``,
    within ``tolerance`` seconds of ``now``."""
    try:
        timestamp = int(headers[TIMESTAMP_HEADER])
        signature = headers[SIGNATURE_HEADER]
    except (KeyError, ValueError):
        return False
    if abs(now.timestamp() - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookNotifier:
    """POSTs each notification to ``url``."""

    name = "webhook"

    def __init__(self, url: str, secret: SecretStr, clock: Clock, timeout: float = 10.0) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"a webhook URL starts with https:// or http://, not {url!r}")
        self._url = url
        self._secret = secret
        self._clock = clock
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"WebhookNotifier({self._url!r})"

    def send(self, notification: Notification) -> None:
        body = notification.body()
        timestamp = int(self._clock.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            ID_HEADER: notification.id,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self._secret.get_secret_value(), timestamp, body),
        }
        try:
            answer = requests.post(
                self._url, data=body, headers=headers, timeout=self._timeout,
                allow_redirects=False,
            )  # fmt: skip
        except requests.RequestException as exc:
            raise RetryLater(f"webhook {self._url}: no answer ({type(exc).__name__})") from None
        if 200 <= answer.status_code < 300:
            return
        what = f"webhook {self._url} answered {answer.status_code}"
        if answer.status_code >= 500 or answer.status_code in _RETRY_STATUSES:
            raise RetryLater(what)
        raise Refused(what)
