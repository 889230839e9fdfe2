"""The delivery channels a deployment configures, read from the environment.

``REBAL_WEBHOOK_URL`` and ``REBAL_WEBHOOK_SECRET`` configure the ``webhook`` channel;
``REBAL_SMTP_HOST``, ``REBAL_SMTP_PORT`` (default 25), ``REBAL_SMTP_FROM`` and ``REBAL_SMTP_TO``
(comma-separated) the ``email`` channel, with ``REBAL_SMTP_USER``, ``REBAL_SMTP_PASSWORD`` and
``REBAL_SMTP_STARTTLS=1`` when the server wants them. A channel whose variables are all unset is
not configured; one half set is an error naming what is missing. Secrets are kept as
:class:`~pydantic.SecretStr`, so no message or ``repr`` ever shows them.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import SecretStr

from rebal.adapters.notify.email import EmailNotifier
from rebal.adapters.notify.webhook import WebhookNotifier
from rebal.ports.clock import Clock
from rebal.ports.notifier import Notifier

_WEBHOOK = ("REBAL_WEBHOOK_URL", "REBAL_WEBHOOK_SECRET")
_SMTP = ("REBAL_SMTP_HOST", "REBAL_SMTP_FROM", "REBAL_SMTP_TO")


class ChannelConfigError(ValueError):
    """A channel is configured only in part, or with a value that cannot be used."""


def _given(env: Mapping[str, str], names: tuple[str, ...], channel: str) -> bool:
    missing = [n for n in names if not env.get(n)]
    if len(missing) == len(names):
        return False
    if missing:
        raise ChannelConfigError(f"the {channel} channel needs {', '.join(missing)} as well")
    return True


def notifiers_from_env(env: Mapping[str, str], clock: Clock) -> dict[str, Notifier]:
    """The configured notifiers by channel name (``webhook``, ``email``)."""
    found: dict[str, Notifier] = {}
    if _given(env, _WEBHOOK, "webhook"):
        try:
            found["webhook"] = WebhookNotifier(
                env["REBAL_WEBHOOK_URL"], SecretStr(env["REBAL_WEBHOOK_SECRET"]), clock
            )
        except ValueError as exc:
            raise ChannelConfigError(f"REBAL_WEBHOOK_URL: {exc}") from None
    if _given(env, _SMTP, "email"):
        port = env.get("REBAL_SMTP_PORT", "25")
        if not port.isdigit():
            raise ChannelConfigError(f"REBAL_SMTP_PORT: {port!r} is not a port number")
        password = env.get("REBAL_SMTP_PASSWORD")
        found["email"] = EmailNotifier(
            env["REBAL_SMTP_HOST"], int(port), env["REBAL_SMTP_FROM"],
            [r.strip() for r in env["REBAL_SMTP_TO"].split(",") if r.strip()],
            starttls=env.get("REBAL_SMTP_STARTTLS") == "1", user=env.get("REBAL_SMTP_USER"),
            password=SecretStr(password) if password else None,
        )  # fmt: skip
    return found
