"""`rebal run` and `rebal runs [show|cancel|resume]`: rebalance runs through the broker.

``rebal run`` proposes on the stored book (the propose options), stores the run with its order
intents, and trades it through the simulated broker, whose market clock starts at ``--as-of``
(default: now). ``rebal runs`` lists runs, ``show`` prints one with its orders and events,
``cancel`` stops one, ``resume`` finishes runs a crash left in progress (asking the broker what
it has before sending anything). The JSON keys are documented in docs/output.md and
docs/runs.md.

Pre-trade compliance always runs (docs/compliance.md): ``--compliance-config FILE`` gives the
firm's restricted list, position limits, quote age and barred accounts. A run it blocks is
printed as any other, each violation goes to stderr on a line of its own starting with its
code, and the command exits 1. An account a run of several holds back (its other accounts
trading) has its violations printed the same way, but the command exits 0 unless a run was
blocked.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rebal.adapters.brokers.simulated import SettingsError, SimulatedBroker, load_settings
from rebal.adapters.calendars.exchange import ExchangeCalendar
from rebal.adapters.config_file import ConfigFileError, read_config
from rebal.adapters.memory.clock import SimulatedClock
from rebal.adapters.memory.prices import InMemoryPrices
from rebal.adapters.storage.unit_of_work import SqlStore
from rebal.cli.book_commands import (
    BandAbsOpt,
    BandRelOpt,
    CashReserveOpt,
    PolicyName,
    RailAbsOpt,
    RailRelOpt,
    refused,
)
from rebal.cli.common import EXIT_BAD_INPUT, as_of_time, fail
from rebal.cli.db import DbOpt, _store
from rebal.core.engine import RunConfig
from rebal.domain.ids import AccountId, RunId, Symbol
from rebal.domain.money import Money, check_cents
from rebal.domain.order import OrderType
from rebal.domain.run import RunState, RunType, ScopeKind
from rebal.errors import InputError
from rebal.harvest_planner import HarvestPlanner
from rebal.io.exact_json import exact_document
from rebal.ports.storage import Store
from rebal.proposing import CorePlanner
from rebal.services.blocks import KEY as BLOCKS_KEY
from rebal.services.blocks import check_block_options
from rebal.services.compliance import (
    ComplianceConfig,
    ComplianceConfigError,
    RunCompliance,
    blocked,
    compliance_config,
    recorded_violations,
)
from rebal.services.execution import ExecutionSettings, cancel_run, execute_run
from rebal.services.order_terms import Algo, OrderTerms
from rebal.services.reconcile import run_flags
from rebal.services.requests import Bands, ProposeRequest, RequestError, TaxOptions
from rebal.services.run_compliance import held_accounts
from rebal.services.runs import (
    DEFAULT_MAX_PRICE_AGE,
    EXCHANGE_TZ,
    Planner,
    RunInputError,
    RunRequest,
    RunView,
    canonical,
    list_runs,
    show_run,
    start_run,
)
from rebal.services.scheduler import request_instant
from rebal.tax_overlay.inputs import read_substitutes


class RunFormat(StrEnum):
    """How a run is printed."""

    table = "table"
    json = "json"


class BrokerName(StrEnum):
    """The broker a run trades through."""

    sim = "sim"


FormatOpt = Annotated[RunFormat, typer.Option("--format", help="table or json.")]
AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="The run's time and the simulated market's clock (ISO 8601 "
        "with a time zone; default: now).",
        show_default=False,
    ),
]
BrokerConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--broker-config", help="JSON or TOML settings of the simulated broker.", show_default=False
    ),
]
ComplianceConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--compliance-config",
        help="JSON or TOML compliance configuration: restricted securities, position limits, "
        "quote age, accounts barred from trading (docs/compliance.md).",
        show_default=False,
    ),
]
MaxWaitOpt = Annotated[
    float,
    typer.Option(
        "--max-wait",
        help="Seconds (on the market clock) to wait for orders before the run ends as timeout.",
    ),
]

runs_app = typer.Typer(
    help="Rebalance runs: list them, show one, cancel one, resume those a crash interrupted.",
    invoke_without_command=True,
)


@dataclass
class _Desk:
    store: SqlStore
    broker: SimulatedBroker
    clock: SimulatedClock
    calendar: ExchangeCalendar
    prices: InMemoryPrices

    def compliance(self, config: ComplianceConfig, default_age: timedelta) -> RunCompliance:
        """The run's pre-trade checks on this desk's calendar and quotes."""
        return RunCompliance(
            calendar=self.calendar,
            prices=self.prices,
            config=config,
            default_price_age=default_age,
        )


@contextmanager
def _desk(db: str | None, as_of: datetime, config: Path | None) -> Iterator[_Desk]:
    """The store at ``db`` and the simulated broker beside it, its clock at ``as_of``."""
    try:
        settings = load_settings(config) if config else None
    except SettingsError as exc:
        raise fail(str(exc)) from None
    with _store(db) as store:
        with store.unit_of_work(actor=_user(), reason="read prices") as uow:
            prices = InMemoryPrices(uow.prices.current())
        clock = SimulatedClock(as_of)
        calendar = ExchangeCalendar.around(as_of, days_before=10, days_after=30)
        broker = SimulatedBroker(
            store.engine, clock=clock, prices=prices, settings=settings, calendar=calendar
        )
        try:
            yield _Desk(store, broker, clock, calendar, prices)
        except RunInputError as exc:
            raise fail(str(exc)) from None


def _compliance_config(path: Path | None) -> ComplianceConfig:
    """The configuration in ``path`` (none: only the accounts' own records and the defaults)."""
    if path is None:
        return ComplianceConfig()
    try:
        return compliance_config(read_config(path, "the compliance configuration"), str(path))
    except (ConfigFileError, ComplianceConfigError) as exc:
        raise fail(str(exc)) from None


def _report_blocked(views: list[RunView]) -> None:
    """Each violation of a run on stderr (a run blocked, or an account a run held back), one
    line each starting with its code; exit 1 when any run was blocked."""
    stopped = False
    for view in views:
        stopped |= blocked(view.run)
        for v in recorded_violations(view.events):
            sys.stderr.write(  # one line each, never wrapped: scripts read them
                f"{v.code}: {v.message} (account {v.account}, {v.leg} leg, run {view.run.id})\n"
            )
    if stopped:
        raise typer.Exit(EXIT_BAD_INPUT)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "rebal"


def run_command(
    account: Annotated[
        str | None, typer.Option("--account", help="Run one account.", show_default=False)
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Run a model's accounts.", show_default=False)
    ] = None,
    whole_book: Annotated[bool, typer.Option("--all", help="Run every account.")] = False,
    run_type: Annotated[RunType, typer.Option("--type", help="What the run does.")] = (
        RunType.REBALANCE
    ),
    amount: Annotated[
        str | None,
        typer.Option("--amount", help="raise_cash: the amount to raise.", show_default=False),
    ] = None,
    policy: Annotated[PolicyName, typer.Option("--policy", help="What to trade to.")] = "rails",  # type: ignore[assignment]
    band_abs: BandAbsOpt = None,
    band_rel: BandRelOpt = None,
    rail_abs: RailAbsOpt = None,
    rail_rel: RailRelOpt = None,
    whole_shares: Annotated[
        bool, typer.Option("--whole-shares", help="Trade whole shares only.")
    ] = False,
    min_trade: Annotated[
        str, typer.Option("--min-trade", help="Drop trades smaller than this amount.")
    ] = "1",
    cash_reserve: CashReserveOpt = "0",
    as_of: AsOfOpt = None,
    broker: Annotated[BrokerName, typer.Option("--broker", help="The broker.")] = BrokerName.sim,
    broker_config: BrokerConfigOpt = None,
    max_wait: MaxWaitOpt = 3600.0,
    max_price_age: Annotated[
        float,
        typer.Option(
            "--max-price-age",
            help="Hours a price may be older than the as-of time before it is stale.",
        ),
    ] = 24.0,
    compliance_file: ComplianceConfigOpt = None,
    order_type: Annotated[
        OrderType,
        typer.Option("--order-type", help="market or limit, for every order of the run."),
    ] = OrderType.MARKET,
    limit_offset_bps: Annotated[
        str,
        typer.Option(
            "--limit-offset-bps",
            help="Limit orders: sells at quote x (1 - N/10000), buys at quote x (1 + N/10000), "
            "the quote at the leg's start, rounded to the cent in the side's favour.",
        ),
    ] = "0",
    extended_hours: Annotated[
        bool,
        typer.Option(
            "--extended-hours",
            help="Limit orders may also trade before the open and after the close.",
        ),
    ] = False,
    algo: Annotated[
        Algo | None,
        typer.Option(
            "--algo",
            help="Slice each order into child orders over --algo-window: twap (equal slices) "
            "or vwap (by the intraday volume profile, docs/runs.md).",
            show_default=False,
        ),
    ] = None,
    algo_window: Annotated[
        int, typer.Option("--algo-window", help="--algo: the window in minutes.")
    ] = 0,
    algo_slices: Annotated[int, typer.Option("--algo-slices", help="--algo: how many slices.")] = 0,
    block_orders: Annotated[
        bool,
        typer.Option(
            "--block-orders",
            help="A batch's orders as one block order per symbol and side from the broker's "
            "omnibus account, the fills allocated back pro rata (docs/runs.md); default: each "
            "account trades its own orders.",
        ),
    ] = False,
    substitutes: Annotated[
        Path | None,
        typer.Option(
            "--substitutes",
            help="harvest: file of substitute groups, one per line (VTI,ITOT,SCHB): what a "
            "harvested security's proceeds buy.",
            show_default=False,
        ),
    ] = None,
    output_format: FormatOpt = RunFormat.table,
    instant: Annotated[
        bool,
        typer.Option(
            "--instant",
            help="A client-directed instant rebalance of --account: runs now while the market "
            "trades (else the next window runs it) and resets the 7-day clock.",
        ),
    ] = False,
    db: DbOpt = None,
) -> None:
    """Propose on the stored book and trade it through the broker, once, after pre-trade
    compliance (a quote as old as --max-price-age passes unless the configuration says less).
    Every order is good for the day and carries the order options (docs/runs.md), kept with
    the run so that a resume trades the same way."""
    scopes = [
        (ScopeKind.ACCOUNT, account),
        (ScopeKind.MODEL, model),
        (ScopeKind.BOOK, "" if whole_book else None),
    ]
    given = [(s, n) for s, n in scopes if n is not None]
    if len(given) != 1:
        raise fail("give exactly one of --account ID, --model NAME, --all")
    scope, name = given[0]
    try:
        money = None if amount is None else Money(Decimal(amount))
        check_cents(money, "--amount")
    except (InvalidOperation, ValueError) as exc:
        raise fail(f"--amount: {exc}") from None
    options: dict[str, Any] = {
        "policy": str(policy.value),
        "band_abs": band_abs,
        "band_rel": band_rel,
        "rail_abs": rail_abs,
        "rail_rel": rail_rel,
        "whole_shares": whole_shares,
        "min_trade": min_trade,
        "cash_reserve": cash_reserve,
        "broker": broker.value,
    }
    try:
        terms = OrderTerms(
            type=order_type,
            limit_offset_bps=Decimal(limit_offset_bps),
            extended_hours=extended_hours,
            algo=algo,
            algo_window_minutes=algo_window,
            algo_slices=algo_slices,
        )
    except InvalidOperation:
        raise fail(f"--limit-offset-bps {limit_offset_bps!r} is not a number") from None
    except ValueError as exc:
        raise fail(str(exc)) from None
    options.update(terms.options())
    if block_orders:
        options[BLOCKS_KEY] = True
        try:
            check_block_options(scope is not ScopeKind.ACCOUNT, options)
        except ValueError as exc:
            raise fail(str(exc)) from None
    try:
        config = ProposeRequest(
            policy=str(policy.value),
            bands=Bands(band_abs, band_rel, rail_abs, rail_rel),
            whole_shares=whole_shares,
            min_trade=min_trade,
            cash_reserve=cash_reserve,
        ).config()
    except RequestError as exc:
        raise refused(exc) from None
    at = as_of_time(as_of)
    planner, substitute_symbols = _planner(run_type, config, substitutes, at, options)
    if instant:
        if scope is not ScopeKind.ACCOUNT:
            raise fail("--instant is for one account: give --account ID")
        options["instant"] = True
        if not ExchangeCalendar.around(at, days_before=10, days_after=30).is_open(at):
            with _store(db) as store:
                try:
                    request_instant(store, AccountId(name), at, actor=_user())
                except RunInputError as exc:
                    raise fail(str(exc)) from None
            print(
                f"the market is closed at {at.isoformat()}: the instant rebalance of {name} "
                "waits for the next trading window (rebal scheduler runs it)",
                file=sys.stderr,
            )
            return
    request = RunRequest(
        scope=scope,
        name=name,
        type=run_type,
        as_of=at,
        config=canonical(options),
        amount=money,
        also_priced=substitute_symbols,
    )
    checks = _compliance_config(compliance_file)
    with _desk(db, at, broker_config) as desk:
        run, new = start_run(desk.store, request, planner, actor=_user())
        if not new:
            print(f"run {run.id} was started before ({run.state}): showing it", file=sys.stderr)
        if not run.state.terminal:
            execute_run(
                desk.store,
                desk.broker,
                run.id,
                clock=desk.clock,
                actor=_user(),
                settings=ExecutionSettings(max_wait_seconds=max_wait),
                compliance=desk.compliance(checks, timedelta(hours=max_price_age)),
            )
        views = [show_run(desk.store, run.id, actor=_user())]
        _print(views, output_format)
        _report_blocked(views)


def _planner(
    run_type: RunType,
    config: RunConfig,
    substitutes: Path | None,
    at: datetime,
    options: dict[str, Any],
) -> tuple[Planner, frozenset[Symbol]]:
    """The run's planner and the symbols it needs priced besides the book's: a harvest run's
    is the tax layer's (harvesting as of the run's date in New York, into the substitutes of
    ``substitutes``, recorded in ``options``); every other type's is the core's."""
    if run_type is not RunType.HARVEST:
        if substitutes is not None:
            raise fail("--substitutes is for --type harvest")
        return CorePlanner(config), frozenset()
    try:
        groups = read_substitutes(substitutes) if substitutes else ()
    except InputError as exc:
        raise fail(f"the input has problems; nothing was written:\n{exc}") from None
    try:
        day = at.astimezone(EXCHANGE_TZ).date()
        settings = TaxOptions(tlh=True, substitutes=groups, as_of=day).settings(day)
    except RequestError as exc:
        raise refused(exc) from None
    options["substitutes"] = [list(g) for g in settings.substitutes]
    symbols = frozenset(Symbol(s) for g in settings.substitutes for s in g)
    return HarvestPlanner(config, settings), symbols


@runs_app.callback()
def runs_list(
    ctx: typer.Context,
    state: Annotated[
        RunState | None,
        typer.Option("--state", help="Only runs in this state.", show_default=False),
    ] = None,
    output_format: FormatOpt = RunFormat.table,
    db: DbOpt = None,
) -> None:
    """Every run, oldest first (or one of the commands below)."""
    if ctx.invoked_subcommand is not None:
        return
    with _store(db) as store:
        _print(list_runs(store, state, actor=_user()), output_format, title=True)


@runs_app.command("show")
def runs_show(run_id: str, output_format: FormatOpt = RunFormat.table, db: DbOpt = None) -> None:
    """One run with its orders and events."""
    with _store(db) as store:
        _print([_view(store, run_id)], output_format)


def _view(store: Store, run_id: str) -> RunView:
    try:
        return show_run(store, RunId(run_id), actor=_user())
    except RunInputError as exc:
        raise fail(str(exc)) from None


@runs_app.command("cancel")
def runs_cancel(
    run_id: str,
    as_of: AsOfOpt = None,
    broker_config: BrokerConfigOpt = None,
    output_format: FormatOpt = RunFormat.table,
    db: DbOpt = None,
) -> None:
    """Cancel a run: a queued one outright, one in progress with its working orders."""
    at = as_of_time(as_of)
    with _desk(db, at, broker_config) as desk:
        cancel_run(desk.store, desk.broker, RunId(run_id), clock=desk.clock, actor=_user())
        _print([show_run(desk.store, RunId(run_id), actor=_user())], output_format)


@runs_app.command("resume")
def runs_resume(
    run_id: Annotated[str | None, typer.Argument(show_default=False)] = None,
    as_of: AsOfOpt = None,
    broker_config: BrokerConfigOpt = None,
    max_wait: MaxWaitOpt = 3600.0,
    compliance_file: ComplianceConfigOpt = None,
    output_format: FormatOpt = RunFormat.table,
    db: DbOpt = None,
) -> None:
    """Finish a run (or every queued or in-progress run) a crash interrupted; a leg not yet
    sent passes pre-trade compliance first (quotes up to a day old unless configured)."""
    at = as_of_time(as_of)
    checks = _compliance_config(compliance_file)
    with _desk(db, at, broker_config) as desk:
        if run_id is not None:
            ids = [_view(desk.store, run_id).run.id]
        else:
            ids = [
                v.run.id
                for s in (RunState.IN_PROGRESS, RunState.QUEUED)
                for v in list_runs(desk.store, s, actor=_user())
            ]
        for rid in ids:
            execute_run(
                desk.store,
                desk.broker,
                rid,
                clock=desk.clock,
                actor=_user(),
                settings=ExecutionSettings(max_wait_seconds=max_wait),
                compliance=desk.compliance(checks, DEFAULT_MAX_PRICE_AGE),
            )
        views = [show_run(desk.store, rid, actor=_user()) for rid in ids]
        _print(views, output_format, title=True)
        _report_blocked(views)


def run_document(view: RunView) -> dict[str, Any]:
    """A run as JSON (keys documented in docs/output.md)."""
    run = view.run
    return {
        "id": run.id,
        "type": run.key.type.value,
        "state": run.state.value,
        "reason": run.reason,
        "created_at": run.created_at,
        "account": run.key.name if run.key.scope is ScopeKind.ACCOUNT else None,
        "model": run.key.name if run.key.scope is ScopeKind.MODEL else None,
        "scope": run.key.scope.value,
        "as_of": run.key.as_of.isoformat(),
        "model_version": run.key.model_version,
        "accounts": list(view.accounts),
        "account_reasons": [
            {"account": a.account, "status": a.status, "reason": a.reason} for a in view.outcomes
        ],
        "orders": [
            {
                "client_order_id": o.client_order_id,
                "account": o.account,
                "symbol": o.symbol,
                "side": o.side.value,
                "quantity": o.quantity,
                "notional": o.notional,
                "type": o.type.value,
                "limit_price": o.limit_price,
                "time_in_force": o.time_in_force.value,
                "extended_hours": o.extended_hours,
                "parent": o.parent,
                "state": o.state.value,
                "filled_quantity": o.filled_quantity,
                "filled_avg_price": o.filled_avg_price,
                "reason": o.reason,
                "lot_instruction": None if o.lots is None else o.lots.as_dict(),
            }
            for o in view.orders
        ],
        "events": [{"at": e.at, "state": e.state.value, "reason": e.reason} for e in view.events],
        "flags": [
            {"kind": f.kind, "account": f.account, "reason": f.reason}
            for f in run_flags(run.id, view.events)
        ],
        "violations": [v.to_row() for v in recorded_violations(view.events)],
        "held": [
            {"account": account, "reason": reason}
            for account, reason in ({} if blocked(run) else held_accounts(view.events)).items()
        ],
    }


def _print(views: list[RunView], output_format: RunFormat, title: bool = False) -> None:
    if output_format is RunFormat.json:
        sys.stdout.write(exact_document("runs", [run_document(v) for v in views]))
        return
    console = Console(width=None if sys.stdout.isatty() else 200)
    if title or len(views) != 1:
        table = Table(title=f"{len(views)} run{'' if len(views) == 1 else 's'}")
        for name in ("id", "type", "scope", "as of", "state", "orders", "reason"):
            table.add_column(name, no_wrap=name != "reason")
        for v in views:
            r = v.run
            table.add_row(
                r.id,
                r.key.type.value,
                f"{r.key.scope.value} {r.key.name}".strip(),
                r.key.as_of.isoformat(),
                r.state.value,
                str(len(v.orders)),
                r.reason,
            )
        console.print(table)
        return
    v = views[0]
    r = v.run
    scope = "the whole book" if r.key.scope is ScopeKind.BOOK else f"{r.key.scope} {r.key.name}"
    console.print(
        f"run {r.id}: {r.key.type.value} of {scope} as of "
        f"{r.key.as_of}: [bold]{r.state.value}[/] ({r.reason})",
        highlight=False,
    )
    for outcome in v.outcomes:
        console.print(f"{outcome.account}: {outcome.reason}", highlight=False)
    orders = Table(title="orders")
    for name in ("client order id", "side", "size", "state", "filled", "avg price", "reason"):
        orders.add_column(name, no_wrap=name != "reason")
    for o in v.orders:
        size = f"{o.quantity:f}" if o.quantity is not None else f"${o.notional:,.2f}"
        price = o.filled_avg_price
        orders.add_row(
            o.client_order_id,
            o.side.value,
            size,
            o.state.value,
            f"{o.filled_quantity:f}",
            "-" if price is None else f"{price:,.4f}",
            o.reason,
        )
    console.print(orders)
    events = Table(title="events")
    for name in ("at", "state", "reason"):
        events.add_column(name)
    for e in v.events:
        events.add_row(f"{e.at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC", e.state.value, e.reason)
    console.print(events)
    for flag in run_flags(r.id, v.events):
        console.print(f"[bold]flagged[/] ({flag.kind}): {flag.reason}", highlight=False)
