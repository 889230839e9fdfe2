"""`rebal scheduler`: decide every stored account and start the runs that are due.

``--once --as-of TIME`` runs one deterministic tick at TIME (what the tests use); without
``--once`` a tick runs every ``--interval`` seconds (60) on the wall clock until SIGTERM or
SIGINT, which stop it between ticks (a tick under way finishes first); it keeps what it read
between ticks and reads again only what changed (:class:`rebal.gauge.StoreSnapshot`).
``--dry-run`` decides and creates nothing. Created runs are queued (``rebal runs resume`` trades
them) unless ``--execute`` is given: each is then traded through the simulated broker, every leg
through pre-trade compliance (a run it blocks is ``blocked``; a scheduled run blocked by a
pattern day trade is ``postponed`` to the next session's open, an instant one is not
rescheduled). See docs/scheduler.md; the JSON keys are in docs/output.md.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rebal.adapters.calendars.exchange import ExchangeCalendar
from rebal.cli.common import as_of_time, fail
from rebal.cli.db import DbOpt, _store
from rebal.cli.runs import BrokerConfigOpt, _desk, _user
from rebal.compliance.hours import RunKind
from rebal.core.engine import RunConfig
from rebal.domain.ids import RunId
from rebal.domain.run import Run
from rebal.gauge import StoreGauge, StoreSnapshot
from rebal.io.exact_json import exact_document
from rebal.ports.calendar import MarketCalendar
from rebal.ports.storage import Store
from rebal.proposing import CorePlanner
from rebal.services.compliance import ComplianceConfig
from rebal.services.execution import execute_run
from rebal.services.runs import RunInputError, canonical
from rebal.services.scheduler import Execute, Fresh, Reader, TickRow, TickSettings, tick


class TickFormat(StrEnum):
    """How a tick is printed."""

    table = "table"
    json = "json"


def row_document(row: TickRow) -> dict[str, Any]:
    """One account's decision as JSON (keys documented in docs/output.md)."""
    return {
        "account": row.account,
        "trigger": row.trigger,
        "decision": row.decision,
        "run_id": row.run_id,
        "next_check_at": row.next_check_at,
        "reason": row.reason,
    }


def _print(rows: list[TickRow], at: datetime, output_format: TickFormat) -> None:
    if output_format is TickFormat.json:
        sys.stdout.write(exact_document("accounts", [row_document(r) for r in rows]))
        sys.stdout.flush()
        return
    console = Console(width=None if sys.stdout.isatty() else 200)
    table = Table(
        title=f"scheduler tick at {at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC: "
        f"{len(rows):,} accounts"
    )
    for name in ("account", "trigger", "decision", "run", "next check (UTC)", "reason"):
        table.add_column(name, no_wrap=name != "reason")
    for r in rows:
        table.add_row(
            r.account,
            r.trigger,
            r.decision,
            r.run_id or "",
            "" if r.next_check_at is None else f"{r.next_check_at:%Y-%m-%d %H:%M}",
            r.reason,
        )
    console.print(table)


@contextmanager
def _ticker(
    db: str | None, at: datetime, execute: bool, broker_config: Any, price_age: timedelta
) -> Iterator[tuple[Store, MarketCalendar, Execute | None]]:
    """The store, the calendar around ``at`` and, with ``execute``, the execution through the
    simulated broker (every leg through pre-trade compliance, quotes up to ``price_age`` old;
    the run's kind, scheduled or instant, tells compliance whether a day trade postpones it)."""
    if not execute:
        with _store(db) as store:
            yield store, ExchangeCalendar.around(at, days_before=10, days_after=30), None
        return
    with _desk(db, at, broker_config) as desk:
        checks = desk.compliance(ComplianceConfig(), price_age)

        def run(rid: RunId, kind: RunKind) -> Run:
            return execute_run(
                desk.store,
                desk.broker,
                rid,
                clock=desk.clock,
                actor=_user(),
                compliance=replace(checks, kind=kind),
            )

        yield desk.store, desk.calendar, run


def _one_tick(
    db: str | None,
    at: datetime,
    settings: TickSettings,
    execute: bool,
    broker_config: Any,
    reader: Reader,
) -> list[TickRow]:
    planner = CorePlanner(RunConfig())
    ticker = _ticker(db, at, execute, broker_config, settings.max_price_age)
    with ticker as (store, calendar, run):
        try:
            return tick(
                store,
                calendar,
                at,
                planner,
                reader,
                actor=_user(),
                settings=settings,
                execute=run,
            ).rows()
        except RunInputError as exc:
            raise fail(str(exc)) from None


def scheduler_command(
    once: Annotated[bool, typer.Option("--once", help="Run one tick and exit.")] = False,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="The tick's time (ISO 8601 with a time zone; with --once; default: now).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide only: create no run.")] = False,
    execute: Annotated[
        bool,
        typer.Option(
            "--execute",
            help="Trade each created run through the simulated broker (else runs are left queued).",
        ),
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between ticks (without --once).", min=0.1)
    ] = 60.0,
    max_price_age: Annotated[
        float,
        typer.Option(
            "--max-price-age",
            help="Hours a price may be older than the tick before a run is blocked as stale.",
        ),
    ] = 24.0,
    broker_config: BrokerConfigOpt = None,
    output_format: Annotated[TickFormat, typer.Option("--format", help="table or json.")] = (
        TickFormat.table
    ),
    db: DbOpt = None,
) -> None:
    """Decide every account of the stored book and start the runs that are due."""
    if as_of is not None and not once:
        raise fail("--as-of is for one tick: give --once with it")
    settings = TickSettings(
        dry_run=dry_run,
        config=canonical({"policy": "rails", "source": "scheduler"}),
        max_price_age=timedelta(hours=max_price_age),
    )
    if once:
        at = as_of_time(as_of)
        rows = _one_tick(db, at, settings, execute, broker_config, Fresh(StoreGauge()))
        _print(rows, at, output_format)
        return
    stop = threading.Event()

    def stopping(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stopping)
    print(
        f"scheduler started: a tick every {interval:g} s (SIGTERM or Ctrl-C stops it)",
        file=sys.stderr,
        flush=True,
    )
    ticks = 0
    snapshot = StoreSnapshot()  # kept between ticks: each reads what changed since the last
    while not stop.is_set():
        at = datetime.now(UTC)
        _print(_one_tick(db, at, settings, execute, broker_config, snapshot), at, output_format)
        ticks += 1
        stop.wait(interval)
    print(
        f"scheduler stopped after {ticks} tick{'' if ticks == 1 else 's'}",
        file=sys.stderr,
        flush=True,
    )
