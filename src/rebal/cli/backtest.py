"""`rebal backtest`: run rebalancing policies (or a grid of them) over price history.

With no ``--prices`` it runs on the shipped monthly Shiller series (US stocks and 10-year
Treasuries, 1871 on), so it works with no download. Bands are given in percent, like every
other command (``--band-rel 20`` is a 20 % relative band). Bad input prints every problem found
(file, line, what is wrong) and exits with status 1 without writing anything.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rebal.adapters.executors.threads import ThreadExecutor
from rebal.backtest.history import PriceHistory
from rebal.backtest.metrics import MONEY_COLUMNS, PERCENT_COLUMNS, money_text
from rebal.backtest.rebalances import rebalances
from rebal.backtest.schedule import FREQUENCIES
from rebal.backtest.sweep import LabRun, tabulate
from rebal.backtest.variants import Variant
from rebal.cli.book_commands import refused
from rebal.cli.common import err, fail
from rebal.domain.ids import symbol
from rebal.errors import InputError
from rebal.io.atomic import write_bytes_atomic, write_text_atomic
from rebal.io.lab_trades import trades_csv, trades_json
from rebal.io.price_history import load_many, load_shipped, period
from rebal.io.sweep_grid import expand_grid, read_grid
from rebal.services import usecases
from rebal.services.requests import (
    DEFAULT_FLOW_FREQUENCY,
    DEFAULT_INITIAL,
    DEFAULT_LAB_LOTS,
    SHIPPED_WEIGHTS,
    RequestError,
    backtest_request,
)

SHOWN_ROWS = 30
#: The shipped series' default weights as ``--weights`` text.
SHIPPED = ",".join(f"{sym}={percent}" for sym, percent in SHIPPED_WEIGHTS.items())


class LabPolicy(StrEnum):
    """The policies the lab compares."""

    never = "never"
    calendar = "calendar"
    threshold = "threshold"
    hybrid = "hybrid"
    rails = "rails"
    tiered = "tiered"
    cash_flow = "cash-flow"


def _weights(text: str) -> dict[str, str]:
    """``--weights SYM=PERCENT,...`` as percent per symbol (the request checks the numbers)."""
    weights: dict[str, str] = {}
    for item in text.split(","):
        sym, sep, number = item.partition("=")
        if not sep or not sym.strip() or not number.strip():
            raise fail(f"--weights {item!r}: expected SYMBOL=PERCENT, e.g. {SHIPPED}")
        if symbol(sym) in weights:
            raise fail("--weights names a symbol twice")
        weights[symbol(sym)] = number
    return weights


def _history(prices: list[Path], returns: bool) -> PriceHistory:
    """The shipped series, or every ``--prices`` file merged on their dates."""
    if returns and not prices:
        raise fail("--returns describes a --prices file; give the file")
    try:
        return load_many(prices, returns=returns) if prices else load_shipped()
    except InputError as exc:
        kind = "return" if returns else "price"
        raise fail(f"the {kind} file has problems; nothing was run:\n{exc}") from None


#: The results table's columns and headers, in order.
HEADERS = {
    "variant": "variant",
    "annual_return": "return/yr",
    "final_value": "final value",
    "volatility": "volatility",
    "max_drawdown": "max DD",
    "avg_abs_drift": "avg drift",
    "max_abs_drift": "max drift",
    "tracking_error": "TE",
    "events": "events",
    "turnover": "turnover/yr",
    "costs": "costs",
    "realised_gains": "realised gains",
    "realised_st": "realised ST",
    "realised_lt": "realised LT",
    "taxes": "taxes",
    "rebalancing_benefit": "benefit vs never",
}
#: The columns a narrow terminal drops first, in that order (variant, return and final value
#: always show).
DROPPED_FIRST = (
    "realised_st",
    "realised_lt",
    "max_abs_drift",
    "volatility",
    "costs",
    "realised_gains",
    "avg_abs_drift",
    "max_drawdown",
    "tracking_error",
    "turnover",
    "taxes",
    "rebalancing_benefit",
    "events",
)


def _cell(col: str, value: Any) -> str:
    if col in PERCENT_COLUMNS:
        return f"{float(value) * 100:.2f}%"
    if col == "events":
        return f"{int(value)}"
    if col in MONEY_COLUMNS:
        return money_text(float(value))
    return str(value)


def _table(run: LabRun, columns: list[str], width: int) -> Table:
    """The table in ``width`` characters at most: every figure on one line, the variant label
    as wide as what is left (it wraps at spaces beyond)."""
    table = Table(title=f"Backtest {run.history.dates[0]} to {run.history.dates[-1]}")
    rows = _cells(run, columns)
    narrow = [_min_width(col, i, rows) for i, col in enumerate(columns)]
    label = max([len(HEADERS["variant"])] + [len(r[0]) for r in rows])
    # Widest first: labels and headers on one line, then labels only, then labels wrapped.
    headers = [max(size, len(HEADERS[col])) for col, size in zip(columns, narrow, strict=True)]
    whole = [label, *headers[1:]]
    for widths in (whole, [label, *narrow[1:]]):
        if _needed_width(widths) <= width:
            break
    else:
        widths = narrow
        widths[0] = max(narrow[0], width - _needed_width(narrow) + narrow[0])
    for col, size in zip(columns, widths, strict=True):
        justify: Literal["left", "right"] = "left" if col == "variant" else "right"
        table.add_column(HEADERS[col], justify=justify, width=size)
    for row in rows:
        table.add_row(*row)
    return table


def _cells(run: LabRun, columns: list[str]) -> list[list[str]]:
    return [
        [_cell(col, row[col]) for col in columns]
        for _, row in run.table.head(SHOWN_ROWS).iterrows()
    ]


def _min_width(col: str, i: int, rows: list[list[str]]) -> int:
    """A column's narrowest: every figure on one line; a header or a label wraps at spaces."""
    texts = [HEADERS[col], *(r[i] for r in rows)] if col == "variant" else [HEADERS[col]]
    words = [len(word) for text in texts for word in text.split()]
    figures = [] if col == "variant" else [len(r[i]) for r in rows]
    return max(words + figures)


def _needed_width(widths: list[int]) -> int:
    """A table's width with columns ``widths``: a border and two spaces of padding each."""
    return 1 + sum(size + 3 for size in widths)


def _natural_width(run: LabRun) -> int:
    """The width of the whole table with every header and label on one line."""
    columns = [col for col in HEADERS if col in run.table]
    rows = _cells(run, columns)
    return _needed_width(
        [max(len(HEADERS[col]), *(len(r[i]) for r in rows)) for i, col in enumerate(columns)]
    )


def _render(run: LabRun, console: Console) -> None:
    """The results table, as wide as the console (``COLUMNS``): a narrow one drops the
    columns of :data:`DROPPED_FIRST` until every figure fits on one line, and says which."""
    columns = [col for col in HEADERS if col in run.table]
    dropped: list[str] = []
    for col in DROPPED_FIRST:
        rows = _cells(run, columns)
        widths = [_min_width(name, i, rows) for i, name in enumerate(columns)]
        if _needed_width(widths) <= console.width:
            break
        if col in columns:
            columns.remove(col)
            dropped.append(HEADERS[col])
    console.print(_table(run, columns, console.width))
    if dropped:
        console.print(f"Not shown at this width: {', '.join(dropped)} (--out writes every column).")
    if len(run.table) > SHOWN_ROWS:
        console.print(f"First {SHOWN_ROWS} of {len(run.table)} variants; --out writes them all.")


def _write_table(run: LabRun, out: Path) -> None:
    # Every figure as computed (float64, the shortest digits that read back to the same value):
    # a program reading the file rounds where it needs to.
    table = run.table
    if out.suffix == ".csv":
        write_text_atomic(out, table.to_csv(index=False))
    else:
        buf = io.BytesIO()
        table.to_parquet(buf, index=False)
        write_bytes_atomic(out, buf.getvalue())
    err.print(f"wrote {out}")


def backtest_command(
    weights: Annotated[
        str | None,
        typer.Option(
            help=f"Target weights in percent, e.g. {SHIPPED} (the default on "
            "the shipped series; equal weights for a --prices file)."
        ),
    ] = None,
    policy: Annotated[LabPolicy, typer.Option(help="Rebalancing policy.")] = LabPolicy.threshold,
    frequency: Annotated[
        str | None,
        typer.Option(
            help=f"Review calendar (calendar, hybrid) or how often a band is checked "
            f"(threshold, rails, tiered): {', '.join(FREQUENCIES)}. daily = every "
            "observation (default: quarterly for calendar/hybrid, else daily)."
        ),
    ] = None,
    day: Annotated[
        int, typer.Option(help="Observation of the period to review on: 1 first, -1 last.")
    ] = 1,
    look: Annotated[
        int | None,
        typer.Option(
            help="Look interval: check every N observations (trading days on daily "
            "data); replaces --frequency."
        ),
    ] = None,
    cooldown: Annotated[
        int,
        typer.Option(
            help="Pause the reviews for N observations after each trade (after a trade "
            "at t, the first review that may trade is at t+N+1)."
        ),
    ] = 0,
    band_abs: Annotated[
        str | None, typer.Option(help="Absolute band, percentage points (e.g. 5).")
    ] = None,
    band_rel: Annotated[
        str | None, typer.Option(help="Relative band, percent of target (default 20).")
    ] = None,
    rail_abs: Annotated[
        str | None, typer.Option(help="Absolute inner rail (default: half the band).")
    ] = None,
    rail_rel: Annotated[
        str | None, typer.Option(help="Relative inner rail (default: half the band).")
    ] = None,
    wide_band_abs: Annotated[
        str | None,
        typer.Option(
            "--wide-band-abs",
            "--wide-abs",
            help="Tiered: absolute wide band (default: twice the band).",
        ),
    ] = None,
    wide_band_rel: Annotated[
        str | None,
        typer.Option(
            "--wide-band-rel",
            "--wide-rel",
            help="Tiered: relative wide band (default: twice the band).",
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            help="First period, YYYY, YYYY-MM or YYYY-MM-DD: the run starts on its first "
            "observation (default: the first date every symbol has a price)."
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            help="Last period, YYYY, YYYY-MM or YYYY-MM-DD: the run ends on its last observation."
        ),
    ] = None,
    initial: Annotated[float, typer.Option(help="Initial portfolio value.")] = DEFAULT_INITIAL,
    flow: Annotated[
        float, typer.Option(help="Cash added on each flow date; negative withdraws.")
    ] = 0.0,
    flow_frequency: Annotated[
        str, typer.Option(help="When flows happen (first observation of each period).")
    ] = DEFAULT_FLOW_FREQUENCY,
    cost_bps: Annotated[float, typer.Option(help="Cost in basis points of traded value.")] = 0.0,
    cost_fixed: Annotated[float, typer.Option(help="Fixed cost per position traded.")] = 0.0,
    prices: Annotated[
        list[Path] | None,
        typer.Option(
            help="Price CSV: wide (date,SYM1,SYM2,...) or long (date,symbol,price); "
            "repeat for several files, merged on their dates "
            "(default: the shipped Shiller series)."
        ),
    ] = None,
    returns: Annotated[
        bool,
        typer.Option(
            "--returns",
            help="The --prices file holds periodic returns (0.012 or 1.2%) instead of prices; "
            "long form: date,symbol,return.",
        ),
    ] = False,
    sweep: Annotated[
        list[str] | None,
        typer.Option(
            help="Grid axis NAME=VALUES, repeatable: band_rel=5:30:5, "
            "policy=threshold,rails, frequency=monthly,quarterly, look=1,10."
        ),
    ] = None,
    grid: Annotated[
        Path | None, typer.Option(help="Grid CSV: one variant per row, columns as --sweep names.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the metrics table to .csv or .parquet.")
    ] = None,
    report: Annotated[Path | None, typer.Option(help="Write an HTML report.")] = None,
    trades: Annotated[
        Path | None,
        typer.Option(
            help="Write every rebalance (date, values, and per asset the weights before "
            "and after and the amount traded) of every variant to .csv or .json."
        ),
    ] = None,
    tax_rate: Annotated[
        str | None,
        typer.Option(
            help="Long-term capital-gains tax rate in percent: adds a taxes column, the "
            "estimated tax on each year's short- and long-term realised gains, netted as the "
            "IRS does, losses carried forward. Reported, not paid out of the portfolio."
        ),
    ] = None,
    short_term_rate: Annotated[
        str | None,
        typer.Option(help="Short-term rate in percent, with --tax-rate (default: --tax-rate)."),
    ] = None,
    state_rate: Annotated[
        str | None,
        typer.Option(help="State tax rate in percent, added to both terms' rates."),
    ] = None,
    lots: Annotated[
        str,
        typer.Option(
            help="Which tax lots a sale relieves: fifo, lifo, hifo (highest cost first), "
            "min-tax (least tax first: by tax per share at the --tax-rate rates, else losses, "
            "then long-term gains, then short-term ones) or average (one average basis per "
            "position, oldest units first for the holding period)."
        ),
    ] = DEFAULT_LAB_LOTS.value,
) -> None:
    """Backtest rebalancing policies on price history and compare their metrics."""
    options = dict(locals())  # the request's options by name (backtest_request picks them)
    if out is not None and out.suffix not in (".csv", ".parquet"):
        raise fail(f"--out must end in .csv or .parquet: {out}")
    if trades is not None and trades.suffix not in (".csv", ".json"):
        raise fail(f"--trades must end in .csv or .json: {trades}")
    # The options as the request takes them: the weights parsed, the periods as dates.
    options["policy"] = policy.value
    options["weights"] = None if weights is None else _weights(weights)
    try:
        options["start"] = None if start is None else period(start)[0]
        options["end"] = None if end is None else period(end)[1]
    except ValueError:
        raise fail(f"--start/--end must be YYYY, YYYY-MM or YYYY-MM-DD: {start}, {end}") from None
    try:
        request = backtest_request(options, shipped=not prices)
    except RequestError as exc:
        raise refused(exc) from None
    history = _history(prices or [], returns)
    base = request.variant()
    try:
        if grid is not None:
            variants = read_grid(grid, base)
        elif sweep:
            variants = expand_grid(base, sweep)
        else:
            variants = [base]
    except InputError as exc:
        raise fail(f"the grid file has problems; nothing was run:\n{exc}") from None
    except ValueError as exc:
        raise fail(str(exc)) from None

    def lab(
        chosen: list[Variant], record: bool = False, progress: Callable[[float], None] | None = None
    ) -> LabRun:
        try:
            return tabulate(
                usecases.backtest(
                    request,
                    history,
                    chosen,
                    record_weights=record,
                    on_progress=progress,
                    executor=ThreadExecutor(),
                )
            )
        except RequestError as exc:
            raise refused(exc) from None
        except ValueError as exc:  # the history lacks the symbols or the period
            raise fail(str(exc)) from None

    if len(variants) > 1:
        columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
        with Progress(*columns, console=err, transient=True) as bar:
            task = bar.add_task(f"{len(variants)} variants", total=1.0)
            run = lab(variants, progress=lambda done: bar.update(task, completed=done))
    else:
        run = lab(variants)
    # A terminal (or COLUMNS) sets the table's width; a file or a pipe gets every column, every
    # header and label on one line.
    fixed = sys.stdout.isatty() or "COLUMNS" in os.environ
    _render(run, Console(width=None if fixed else _natural_width(run)))
    if out is not None:
        _write_table(run, out)
    if trades is not None:
        recorded = lab(variants, record=True)
        events = rebalances(recorded, len(variants))
        write = trades_json if trades.suffix == ".json" else trades_csv
        write_text_atomic(trades, write(events))
        err.print(f"wrote {trades} ({len(events)} rebalance{'' if len(events) == 1 else 's'})")
    if report is not None:
        # matplotlib is slow to import; only a report needs it.
        from rebal.backtest.html_report import render_report

        focus = lab(variants[:1], record=True)
        write_text_atomic(report, render_report(run, focus, "rebal backtest"))
        err.print(f"wrote {report}")
