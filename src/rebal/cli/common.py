"""What every command shares: the error console, the exit status for bad input, percentages."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.markup import escape

EXIT_BAD_INPUT = 1
#: Standard error. ``soft_wrap``: a message is never broken at the terminal's width (a narrow
#: terminal wraps it visually), so each problem stays one line when piped or grepped.
err = Console(stderr=True, soft_wrap=True)


def fail(message: str) -> typer.Exit:
    """Print ``message`` as an error (verbatim: brackets are not markup) and return the exit."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(EXIT_BAD_INPUT)


def percent(option: str, text: str | None) -> float | None:
    """``text`` given to ``option`` as a percentage (``5``, ``5%``) → a fraction; None if absent."""
    if text is None:
        return None
    try:
        value = float(text.strip().removesuffix("%").strip())
    except ValueError:
        raise fail(f"{option} {text!r} is not a percentage") from None
    if not 0 <= value < 1000:
        raise fail(f"{option} must be a non-negative percentage, received {text}")
    return value / 100.0


def as_of_time(text: str | None, option: str = "--as-of") -> datetime:
    """The instant ``text`` gives to ``option`` (ISO 8601 with a time zone); now when absent."""
    if text is None:
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise fail(
            f"{option} {text!r} is not a time (give ISO 8601, e.g. 2026-11-24T10:00-05:00)"
        ) from None
    if at.tzinfo is None:
        raise fail(f"{option} {text!r} has no time zone (add one, e.g. -05:00 or Z)")
    return at
