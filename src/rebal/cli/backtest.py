"""`rebal backtest`: run rebalancing policies (or a grid of them) over price history.

With no ``--prices`` it runs on the shipped monthly Shiller series (US stocks and 10-year
Treasuries, 1871 on), so it works with no download. Bands are given in percent, like every
other command (``--band-rel 20`` is a 20 % relative band). Bad input prints every problem found
(file, line, what is wrong) and exits with status 1 without writing anything.
"""

from __future__ import annotations

import io
import math
import sys
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rebal.backtest.data import PriceHistory, load_prices, load_shipped, period
from rebal.backtest.engine import LAB_LOT_METHODS, Costs
from rebal.backtest.metrics import MONEY_COLUMNS, PERCENT_COLUMNS, money_text
from rebal.backtest.schedule import FREQUENCIES, ScheduleSpec
from rebal.backtest.sweep import LabRun, expand_grid, read_grid, run_lab
from rebal.backtest.variants import DEFAULT_FREQUENCY, Variant
from rebal.cli.common import err, fail, percent
from rebal.core.bands import BandSpec
from rebal.domain.ids import symbol
from rebal.io.atomic import write_bytes_atomic, write_text_atomic
from rebal.io.errors import InputError
from rebal.tax.lots import LotMethod
from rebal.tax.rates import TaxRates

SHOWN_ROWS = 30
SHIPPED_WEIGHTS = "stocks=60,bonds=40"


class LabPolicy(StrEnum):
    """The policies the lab compares."""

    never = "never"
    calendar = "calendar"
    threshold = "threshold"
    hybrid = "hybrid"
    rails = "rails"
    tiered = "tiered"
    cash_flow = "cash-flow"


def _tax_rates(
    tax_rate: str | None, state_rate: str | None, short_term_rate: str | None
) -> TaxRates | None:
    """The long-term rate (``--tax-rate``), the short-term rate (default: the same) and the
    state rate, in percent."""
    if tax_rate is None:
        for option, given in (("--state-rate", state_rate), ("--short-term-rate", short_term_rate)):
            if given is not None:
                raise fail(f"{option} goes with --tax-rate; give --tax-rate too")
        return None
    rates: list[Decimal] = []
    for option, text in (
        ("--tax-rate", tax_rate),
        ("--short-term-rate", short_term_rate or tax_rate),
        ("--state-rate", state_rate or "0"),
    ):
        try:
            rate = Decimal(text.strip().removesuffix("%")) / 100
            if not rate.is_finite():
                raise InvalidOperation
            rates.append(rate)
        except InvalidOperation:
            raise fail(f"{option} {text!r} is not a percentage") from None
    try:
        return TaxRates(long_term=rates[0], short_term=rates[1], state=rates[2])
    except ValueError as exc:
        raise fail(f"--tax-rate/--short-term-rate/--state-rate: {exc}") from None


def _lot_method(text: str) -> LotMethod:
    """The ``--lots`` method, one the lab runs."""
    if text not in LAB_LOT_METHODS:
        names = "|".join(LAB_LOT_METHODS)
        raise fail(f"--lots {text!r} is not a lot method the lab runs: {names}")
    return LotMethod(text)


def _weights(text: str, history: PriceHistory) -> tuple[list[str], np.ndarray]:
    symbols: list[str] = []
    values: list[float] = []
    for item in text.split(","):
        sym, sep, number = item.partition("=")
        try:
            value = float(number)
        except ValueError:
            value = math.nan
        if not sep or not sym.strip() or not math.isfinite(value) or value < 0:
            raise fail(f"--weights {item!r}: expected SYMBOL=PERCENT, e.g. {SHIPPED_WEIGHTS}")
        symbols.append(symbol(sym))
        values.append(value)
    total = sum(values)
    if abs(total - 100.0) > 1e-6:
        raise fail(f"--weights must add up to 100 (percent), they add up to {total:g}")
    if len(set(symbols)) != len(symbols):
        raise fail("--weights names a symbol twice")
    return symbols, np.array(values) / 100.0


def _history(
    prices: Path | None, returns: bool, start: str | None, end: str | None
) -> PriceHistory:
    if returns and prices is None:
        raise fail("--returns describes a --prices file; give the file")
    try:
        history = load_shipped() if prices is None else load_prices(prices, returns=returns)
    except InputError as exc:
        kind = "return" if returns else "price"
        raise fail(f"the {kind} file has problems; nothing was run:\n{exc}") from None
    try:
        lo = None if start is None else period(start)[0]
        hi = None if end is None else period(end)[1]
    except ValueError:
        raise fail(f"--start/--end must be YYYY, YYYY-MM or YYYY-MM-DD: {start}, {end}") from None
    try:
        return history.between(lo, hi)
    except ValueError as exc:
        raise fail(str(exc)) from None


def _flows(history: PriceHistory, amount: float, frequency: str) -> np.ndarray:
    flows = np.zeros(len(history.dates))
    if amount:
        flows[ScheduleSpec(frequency=frequency).mask(history.dates)] = amount
    return flows


def _render(run: LabRun, console: Console) -> None:
    table = Table(title=f"Backtest {run.history.dates[0]} to {run.history.dates[-1]}")
    headers = {
        "variant": "variant",
        "annual_return": "return/yr",
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
    if "taxes" not in run.table:
        del headers["taxes"]
    for col, name in headers.items():
        table.add_column(name, justify="left" if col == "variant" else "right")
    for _, row in run.table.head(SHOWN_ROWS).iterrows():
        cells = []
        for col in headers:
            value = row[col]
            if col in PERCENT_COLUMNS:
                cells.append(f"{value * 100:.2f}%")
            elif col == "events":
                cells.append(f"{int(value)}")
            elif col in MONEY_COLUMNS:
                cells.append(money_text(value))
            else:
                cells.append(str(value))
        table.add_row(*cells)
    console.print(table)
    if len(run.table) > SHOWN_ROWS:
        console.print(f"First {SHOWN_ROWS} of {len(run.table)} variants; --out writes them all.")


def _write_table(run: LabRun, out: Path) -> None:
    # Analytics are float64; round at the boundary: money to cents, fractions to 1e-10.
    table = run.table.copy()
    money = [c for c in MONEY_COLUMNS if c in table]
    table[money] = table[money].round(2) + 0.0  # + 0.0: no -0.0 in the file
    numeric = [c for c in table.columns if c not in money and pd.api.types.is_float_dtype(table[c])]
    table[numeric] = table[numeric].round(10)
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
            help=f"Target weights in percent, e.g. {SHIPPED_WEIGHTS} (the default on "
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
            help="Observations after a trade before the next review may trade "
            "(seed 001's pause after rebalancing)."
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
    wide_abs: Annotated[
        str | None,
        typer.Option(
            "--wide-band-abs",
            "--wide-abs",
            help="Tiered: absolute wide band (default: twice the band).",
        ),
    ] = None,
    wide_rel: Annotated[
        str | None,
        typer.Option(
            "--wide-band-rel",
            "--wide-rel",
            help="Tiered: relative wide band (default: twice the band).",
        ),
    ] = None,
    start: Annotated[str | None, typer.Option(help="First date, YYYY-MM or YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Last date, YYYY-MM or YYYY-MM-DD.")] = None,
    initial: Annotated[float, typer.Option(help="Initial portfolio value.")] = 10_000.0,
    flow: Annotated[
        float, typer.Option(help="Cash added on each flow date; negative withdraws.")
    ] = 0.0,
    flow_frequency: Annotated[
        str, typer.Option(help="When flows happen (first observation of each period).")
    ] = "monthly",
    cost_bps: Annotated[float, typer.Option(help="Cost in basis points of traded value.")] = 0.0,
    cost_fixed: Annotated[float, typer.Option(help="Fixed cost per position traded.")] = 0.0,
    prices: Annotated[
        Path | None,
        typer.Option(
            help="Price CSV: wide (date,SYM1,SYM2,...) or long (date,symbol,price). "
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
    ] = LotMethod.AVERAGE.value,
) -> None:
    """Backtest rebalancing policies on price history and compare their metrics."""
    if out is not None and out.suffix not in (".csv", ".parquet"):
        raise fail(f"--out must end in .csv or .parquet: {out}")
    if band_abs is not None and band_rel is not None:
        raise fail("give either --band-abs or --band-rel, not both")
    if initial <= 0 or not math.isfinite(initial):
        raise fail(f"--initial must be positive, received {initial:g}")
    if cost_bps < 0 or cost_fixed < 0:
        raise fail("costs cannot be negative")
    tax = _tax_rates(tax_rate, state_rate, short_term_rate)
    lot_method = _lot_method(lots)
    history = _history(prices, returns, start, end)
    default_weights = SHIPPED_WEIGHTS if prices is None else None
    if weights is None and default_weights is None:
        symbols = list(history.symbols)
        target = np.full(len(symbols), 1.0 / len(symbols))
    else:
        symbols, target = _weights(weights or SHIPPED_WEIGHTS, history)
    try:
        history = history.select(symbols)
        b_abs = percent("--band-abs", band_abs)
        b_rel = percent("--band-rel", band_rel)
        base = Variant(
            policy=policy.value,
            bands=BandSpec(
                band_abs=b_abs,
                band_rel=0.20 if b_abs is None and b_rel is None else b_rel,
                rail_abs=percent("--rail-abs", rail_abs),
                rail_rel=percent("--rail-rel", rail_rel),
                wide_abs=percent("--wide-band-abs", wide_abs),
                wide_rel=percent("--wide-band-rel", wide_rel),
            ),
            schedule=ScheduleSpec(
                frequency=frequency or DEFAULT_FREQUENCY.get(policy.value, "daily"),
                day=day,
                look=look,
                cooldown=cooldown,
            ),
        )
        if grid is not None:
            variants = read_grid(grid, base)
        elif sweep:
            variants = expand_grid(base, sweep)
        else:
            variants = [base]
        flows = _flows(history, flow, flow_frequency)
    except InputError as exc:
        raise fail(f"the grid file has problems; nothing was run:\n{exc}") from None
    except ValueError as exc:
        raise fail(str(exc)) from None
    costs = Costs(bps=cost_bps, fixed=cost_fixed)

    def lab(
        chosen: list[Variant], record: bool = False, progress: Callable[[float], None] | None = None
    ) -> LabRun:
        return run_lab(
            history,
            chosen,
            target,
            initial=initial,
            flows=flows,
            costs=costs,
            record_weights=record,
            on_progress=progress,
            tax=tax,
            lots=lot_method,
        )

    if len(variants) > 1:
        columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
        with Progress(*columns, console=err, transient=True) as bar:
            task = bar.add_task(f"{len(variants)} variants", total=1.0)
            run = lab(variants, progress=lambda done: bar.update(task, completed=done))
    else:
        run = lab(variants)
    _render(run, Console(width=None if sys.stdout.isatty() else 200))
    if out is not None:
        _write_table(run, out)
    if report is not None:
        # matplotlib is slow to import; only a report needs it.
        from rebal.backtest.report import render_report

        focus = lab(variants[:1], record=True)
        write_text_atomic(report, render_report(run, focus, "rebal backtest"))
        err.print(f"wrote {report}")
