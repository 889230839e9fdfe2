"""`rebal calendar`: the exchange's trading sessions and the time of each day's managed run.

Every session, open, close and early close comes from the exchange calendar adapter
(``exchange_calendars``, XNYS); the managed run's time is
:func:`rebal.compliance.hours.managed_run_at` of the session's close. The table shows the
exchange's local time with its zone; JSON carries UTC instants with their offset.
``docs/calendar.md`` documents the keys.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from rebal.adapters.calendars.exchange import ExchangeCalendar
from rebal.cli.common import fail
from rebal.clock import trade_date_today
from rebal.compliance.hours import managed_run_at
from rebal.io.exact_json import exact_document
from rebal.ports.calendar import Session

#: Sessions shown when --to is not given: two weeks from --from.
DEFAULT_SPAN = timedelta(days=13)


class CalendarFormat(StrEnum):
    """How the sessions are printed."""

    table = "table"
    json = "json"


def _day(option: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise fail(f"{option} {text!r} is not a date (YYYY-MM-DD)") from None


def session_row(session: Session) -> dict[str, Any]:
    """One session as the JSON row: its date, open, close (UTC), whether the close is early and
    the managed run's instant."""
    return {
        "date": session.day.isoformat(),
        "open": session.open,
        "close": session.close,
        "early_close": session.early_close,
        "managed_run_at": managed_run_at(session.close),
    }


def _local(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%H:%M %Z")


def calendar_command(
    start: Annotated[
        str | None, typer.Option("--from", help="First date, YYYY-MM-DD (default: today).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Last date, YYYY-MM-DD (default: 13 days on).")
    ] = None,
    output_format: Annotated[
        CalendarFormat, typer.Option("--format", help="table or json.")
    ] = CalendarFormat.table,
) -> None:
    """Trading sessions (XNYS) with their open, close and the managed run's time."""
    first = _day("--from", start) or trade_date_today()
    last = _day("--to", end) or first + DEFAULT_SPAN
    if last < first:
        raise fail(f"--to {last} is before --from {first}")
    try:
        calendar = ExchangeCalendar(start=first, end=last)
    except ValueError as exc:
        raise fail(f"no calendar from {first} to {last}: {exc}") from None
    sessions = calendar.sessions(first, last)
    if output_format is CalendarFormat.json:
        typer.echo(exact_document("sessions", [session_row(s) for s in sessions]), nl=False)
        return
    zone = calendar.timezone
    table = Table(title=f"{calendar.name} sessions {first} to {last} ({zone.key})")
    for column in ("date", "open", "close", "early close", "managed run"):
        table.add_column(column)
    for s in sessions:
        table.add_row(
            s.day.isoformat(),
            _local(s.open, zone),
            _local(s.close, zone),
            "yes" if s.early_close else "",
            _local(managed_run_at(s.close), zone),
        )
    Console().print(table)
