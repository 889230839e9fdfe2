"""`rebal notifications [deliver]`: the outbox, and delivering it through the configured channels.

``rebal notifications`` lists every notification with its delivery state per channel;
``deliver`` attempts each due entry (with :class:`~rebal.services.notifications.RetryPolicy`'s
backoff), once with ``--once``, else again whenever the next retry is due until none is pending.
Channels come from the environment (:mod:`rebal.adapters.notify.config`; docs/notifications.md).
The JSON keys are documented in docs/output.md.
"""

from __future__ import annotations

import os
import sys
import time
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rebal.adapters.notify.config import ChannelConfigError, notifiers_from_env
from rebal.cli.common import fail
from rebal.cli.db import DbOpt, _store
from rebal.clock import SystemClock
from rebal.domain.notification import DeliveryState
from rebal.io.exact_json import exact_document
from rebal.ports.outbox import OutboxEntry
from rebal.services.notifications import StoredOutbox, deliver_due


class ListFormat(StrEnum):
    """How the outbox is printed."""

    table = "table"
    json = "json"


notifications_app = typer.Typer(
    help="Notifications: list the outbox, deliver what is due.", invoke_without_command=True
)


def entry_document(entry: OutboxEntry) -> dict[str, Any]:
    """One outbox entry as ``rebal notifications --format json`` prints it."""
    return {
        **entry.notification.document(),
        "channel": entry.channel,
        "state": entry.state.value,
        "attempts": entry.attempts,
        "next_attempt_at": entry.next_attempt_at,
        "delivered_at": entry.delivered_at,
        "last_error": entry.last_error,
    }


@notifications_app.callback()
def notifications_list(
    ctx: typer.Context,
    output_format: Annotated[
        ListFormat, typer.Option("--format", help="table or json.")
    ] = ListFormat.table,
    db: DbOpt = None,
) -> None:
    """Every notification and channel with its delivery state, oldest first."""
    if ctx.invoked_subcommand is not None:
        return
    with _store(db) as store:
        entries = StoredOutbox(store, actor="rebal notifications").entries()
    if output_format is ListFormat.json:
        sys.stdout.write(exact_document("notifications", [entry_document(e) for e in entries]))
        return
    table = Table(
        "id",
        "kind",
        "topic",
        "account",
        "run",
        "channel",
        "state",
        "attempts",
        "next attempt",
        "last error",
        title="Notifications",
    )
    for e in entries:
        n = e.notification
        due = (
            ""
            if e.state is not DeliveryState.PENDING
            else (e.next_attempt_at.isoformat() if e.next_attempt_at else "now")
        )
        table.add_row(
            n.id,
            n.kind.value,
            n.topic,
            n.account or "",
            n.run or "",
            e.channel,
            e.state.value,
            str(e.attempts),
            due,
            e.last_error,
        )
    Console(width=None if sys.stdout.isatty() else 200).print(table)


@notifications_app.command("deliver")
def notifications_deliver(
    once: Annotated[
        bool, typer.Option("--once", help="One pass over what is due, then stop.")
    ] = False,
    db: DbOpt = None,
) -> None:
    """Deliver the due notifications through the configured channels (webhook, e-mail)."""
    clock = SystemClock()
    try:
        notifiers = notifiers_from_env(os.environ, clock)
    except ChannelConfigError as exc:
        raise fail(str(exc)) from None
    with _store(db) as store:
        outbox = StoredOutbox(store, actor="rebal notifications deliver")
        while True:
            report = deliver_due(outbox, notifiers, clock.now())
            typer.echo(
                f"delivered {report.delivered}, retrying {report.retrying}, failed {report.failed}"
            )
            waiting = [
                e.next_attempt_at for e in outbox.entries() if e.state is DeliveryState.PENDING
            ]
            if once or not waiting:
                return
            soonest = min((w for w in waiting if w is not None), default=clock.now())
            time.sleep(max(0.0, (soonest - clock.now()).total_seconds()))
