"""Read the backtest lab's price histories: the shipped Shiller series and users' CSV files.

A history is a (T, K) array of positive prices (or total-return index levels) on T strictly
increasing dates for K symbols. Users' files come in two shapes:

* wide: ``date,SYM1,SYM2,...`` with one row per date;
* long: ``date,symbol,price`` (or ``date,symbol,return``) with one row per date and symbol.

A file may hold periodic returns instead of prices (``returns=True``; ``rebal backtest
--returns``): each cell is the return of the period ending on its date, as a fraction
(``0.012``) or a percentage (``1.2%``). They become index levels starting at 1 on the first
date; the first row's return belongs to the period before the portfolio is bought, so it does
not count.

Symbols may start on different dates (a fund listed later than another): the cells before a
symbol's first price are empty (wide) or absent (long) and held as NaN, and
:meth:`PriceHistory.between` starts a run where every symbol has a price unless told otherwise.
A missing price after a symbol's first one is a gap, and an error. Several files can be merged
into one history (:func:`merge`) on their dates.

Every problem found (unparsable date or price, gap, duplicate, non-positive price, a return of
-100 % or less, unsorted dates) is collected and raised as one
:class:`rebal.errors.InputError` naming the file and the line, so nothing is simulated on a
half-read history.

Numbers are read by :func:`rebal.io.sheet.parse_float` and symbols normalised by
:func:`rebal.domain.ids.symbol`, as in every other file; the lab
(:mod:`rebal.backtest`) takes the :class:`PriceHistory` made here and reads no file.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from datetime import date, timedelta
from importlib import resources
from pathlib import Path

import numpy as np

from rebal.backtest.history import PriceHistory
from rebal.core.types import FloatArray
from rebal.domain.ids import symbol
from rebal.errors import InputError, Problem
from rebal.io.sheet import parse_float

SHIPPED_NAME = "shiller_us_stock_bond_monthly.csv"
LONG_HEADERS = (("date", "symbol", "price"), ("date", "symbol", "return"))


def period(text: str) -> tuple[date, date]:
    """The first and last day of ``YYYY`` (a year), ``YYYY-MM`` (a month) or ``YYYY-MM-DD``
    (a day): ``--start`` takes a period's first observation and ``--end`` its last."""
    first = parse_date(text)
    text = text.strip()
    if len(text) == 4:
        return first, date(first.year, 12, 31)
    if len(text) == 7:
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        return first, following - timedelta(days=1)
    return first, first


def parse_date(text: str) -> date:
    """Parse ``YYYY-MM-DD``, ``YYYY-MM`` (the first of the month) or ``YYYY`` (January 1)."""
    text = text.strip()
    if len(text) == 4:
        text += "-01"
    if len(text) == 7:
        text += "-01"
    return date.fromisoformat(text)


def load_shipped() -> PriceHistory:
    """Return the shipped monthly US stock / 10-year Treasury total-return series (1871 on)."""
    ref = resources.files("rebal").joinpath("data", "history", SHIPPED_NAME)
    with resources.as_file(ref) as path:
        return load_prices(path, name=f"shipped {SHIPPED_NAME}")


def load_prices(path: Path, *, name: str | None = None, returns: bool = False) -> PriceHistory:
    """Read a wide or long CSV of prices (or of periodic ``returns``, made index levels);
    raise :class:`InputError` listing every problem."""
    label = name or path.name
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise InputError([Problem(label, None, None, f"cannot read: {exc.strerror}")]) from exc
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise InputError([Problem(label, None, None, "empty file (no header)")])
    header = [cell.strip() for cell in rows[0]]
    cell = _return if returns else _price
    if tuple(h.lower() for h in header) in LONG_HEADERS:
        history = _read_long(label, rows, cell)
    elif header[0].lower() != "date":
        raise InputError(
            [
                Problem(
                    label,
                    1,
                    header[0],
                    "first column must be 'date' (wide: date,SYM1,SYM2,..."
                    "; long: date,symbol,price)",
                )
            ]
        )
    else:
        history = _read_wide(label, header, rows, cell)
    if not returns:
        return history
    periodic = history.prices
    levels: FloatArray = np.cumprod(1.0 + np.nan_to_num(periodic), axis=0, dtype=np.float64)
    # 1 on each symbol's first date: its own return is before the symbol's start.
    levels /= levels[history.first_prices(), np.arange(levels.shape[1])]
    levels[np.isnan(periodic)] = np.nan
    return PriceHistory(history.dates, history.symbols, levels, history.source)


def load_many(paths: list[Path], *, returns: bool = False) -> PriceHistory:
    """Read every file of ``paths`` (as :func:`load_prices`) and :func:`merge` them; raise one
    :class:`InputError` listing the problems of every file."""
    histories: list[PriceHistory] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            histories.append(load_prices(path, returns=returns))
        except InputError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    return merge(histories)


Cell = Callable[[str, int, str, str, list[Problem]], float]


def _number(
    label: str, line: int, column: str, text: str, problems: list[Problem], what: str
) -> float:
    """Parse one cell as a number; record a problem and return NaN when it is not one."""
    text = text.strip()
    if not text:
        problems.append(Problem(label, line, column, f"missing {what} (gap)"))
        return math.nan
    percent = what == "return" and text.endswith("%")
    value = parse_float(text[:-1] if percent else text)
    if value is None:
        problems.append(Problem(label, line, column, f"not a number: {text!r}"))
        return math.nan
    if percent:
        value /= 100.0
    if not math.isfinite(value):
        problems.append(Problem(label, line, column, f"not a finite number: {text!r}"))
        return math.nan
    return value


def _price(label: str, line: int, column: str, text: str, problems: list[Problem]) -> float:
    """Parse one price cell; record a problem and return NaN when it is not usable."""
    value = _number(label, line, column, text, problems, "price")
    if value <= 0:
        problems.append(Problem(label, line, column, f"non-positive price {text.strip()}"))
        return math.nan
    return value


def _return(label: str, line: int, column: str, text: str, problems: list[Problem]) -> float:
    """Parse one periodic-return cell (fraction, or percent with ``%``)."""
    value = _number(label, line, column, text, problems, "return")
    if value <= -1.0:
        problems.append(
            Problem(label, line, column, f"return {text.strip()} loses everything (-100 % or less)")
        )
        return math.nan
    return value


def _date(label: str, line: int, text: str, problems: list[Problem]) -> date | None:
    try:
        return parse_date(text)
    except ValueError:
        problems.append(Problem(label, line, "date", f"not a date (YYYY-MM-DD): {text!r}"))
        return None


def _check_order(
    label: str, line: int, when: date, previous: tuple[date, int] | None, problems: list[Problem]
) -> None:
    """Record a duplicate or an out-of-order date against the previous row of the same series."""
    if previous is None:
        return
    prev, prev_line = previous
    if when == prev:
        message = f"duplicate date {when} (also line {prev_line})"
        problems.append(Problem(label, line, "date", message))
    elif when < prev:
        message = f"dates not sorted: {when} after {prev} (line {prev_line})"
        problems.append(Problem(label, line, "date", message))


def _read_wide(label: str, header: list[str], rows: list[list[str]], cell: Cell) -> PriceHistory:
    problems: list[Problem] = []
    symbols = [symbol(s) for s in header[1:]]
    seen: set[str] = set()
    for sym in symbols:
        if not sym:
            problems.append(Problem(label, 1, None, "empty symbol name in header"))
        elif sym in seen:
            problems.append(Problem(label, 1, sym, f"duplicate column {sym}"))
        seen.add(sym)
    if not symbols:
        problems.append(Problem(label, 1, None, "no price columns after 'date'"))
    dates: list[date] = []
    prices: list[list[float]] = []
    previous: tuple[date, int] | None = None
    started = [False] * len(symbols)  # a column's empty cells before its first price are no gap
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            problems.append(
                Problem(label, line, None, f"{len(row)} cells, header has {len(header)}")
            )
            continue
        when = _date(label, line, row[0], problems)
        values = []
        for k, (sym, text) in enumerate(zip(symbols, row[1:], strict=True)):
            started[k] = started[k] or bool(text.strip())
            values.append(cell(label, line, sym, text, problems) if started[k] else math.nan)
        if when is None:
            continue
        _check_order(label, line, when, previous, problems)
        previous = (when, line)
        dates.append(when)
        prices.append(values)
    for sym, has in zip(symbols, started, strict=True):
        if sym and not has and dates:
            problems.append(Problem(label, None, sym, "no prices in the column"))
    return _finish(label, dates, tuple(symbols), prices, problems)


def _read_long(label: str, rows: list[list[str]], cell: Cell) -> PriceHistory:
    problems: list[Problem] = []
    by_symbol: dict[str, dict[date, float]] = {}
    last: dict[str, tuple[date, int]] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != 3:
            problems.append(Problem(label, line, None, f"{len(row)} cells, expected 3"))
            continue
        sym: str = symbol(row[1])
        when = _date(label, line, row[0], problems)
        value = cell(label, line, sym or "price", row[2], problems)
        if not sym:
            problems.append(Problem(label, line, "symbol", "empty symbol"))
            continue
        if when is None:
            continue
        _check_order(label, line, when, last.get(sym), problems)
        last[sym] = (when, line)
        by_symbol.setdefault(sym, {})[when] = value
    symbols = tuple(by_symbol)
    all_dates = sorted({d for series in by_symbol.values() for d in series})
    for sym, series in by_symbol.items():
        _check_gaps(label, sym, [d for d in all_dates if d not in series], min(series), problems)
    prices = [[by_symbol[s].get(d, math.nan) for s in symbols] for d in all_dates]
    return _finish(label, all_dates, symbols, prices, problems)


def _check_gaps(
    label: str, sym: str, missing: list[date], first: date, problems: list[Problem], where: str = ""
) -> None:
    """Record the dates after ``sym``'s first price with no price (before it none is due)."""
    gaps = [d for d in missing if d > first]
    if gaps:
        shown = ", ".join(str(d) for d in gaps[:5]) + (" ..." if len(gaps) > 5 else "")
        message = f"gap: no price on {len(gaps)} date(s){where}: {shown}"
        problems.append(Problem(label, None, sym, message))


def merge(histories: list[PriceHistory]) -> PriceHistory:
    """One history of every symbol of ``histories`` (from several files) on all their dates;
    raise :class:`InputError` for a symbol in two of them or a date one file has and another
    lacks after a symbol's first price."""
    if len(histories) == 1:
        return histories[0]
    problems: list[Problem] = []
    owner: dict[str, str] = {}
    for history in histories:
        for sym in history.symbols:
            if sym in owner:
                problems.append(Problem(history.source, 1, sym, f"{sym} is also in {owner[sym]}"))
            owner.setdefault(sym, history.source)
    dates = np.unique(np.concatenate([h.dates for h in histories]))
    columns: list[FloatArray] = []
    for history in histories:
        rows = np.searchsorted(dates, history.dates)
        block = np.full((len(dates), len(history.symbols)), np.nan)
        block[rows] = history.prices
        absent = np.setdiff1d(dates, history.dates).astype(object).tolist()
        for sym, i in zip(history.symbols, history.first_prices(), strict=True):
            first = history.dates[i].astype(object)
            _check_gaps(history.source, sym, absent, first, problems, " other files have")
        columns.append(block)
    if problems:
        raise InputError(problems)
    return PriceHistory(
        dates=dates,
        symbols=tuple(s for h in histories for s in h.symbols),
        prices=np.hstack(columns),
        source=" + ".join(h.source for h in histories),
    )


def _finish(
    label: str,
    dates: list[date],
    symbols: tuple[str, ...],
    prices: list[list[float]],
    problems: list[Problem],
) -> PriceHistory:
    if not problems and len(dates) < 2:
        problems.append(Problem(label, None, None, "fewer than two dated rows"))
    if problems:
        raise InputError(problems)
    return PriceHistory(
        dates=np.array(dates, dtype="datetime64[D]"),
        symbols=symbols,
        prices=np.array(prices, dtype=np.float64),
        source=label,
    )
