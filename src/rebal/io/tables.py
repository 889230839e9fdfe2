"""Validate and normalise the four book tables: models, accounts, holdings, prices.

The rules are the same whether the tables come from CSV files (`rebal.io.csvfiles`) or
from DataFrames built in Python (`validate_tables`): every cell is read through its text.
All problems in all four tables are collected and raised together as one `InputError`;
otherwise the result is a `Tables` of typed, normalised DataFrames for the core.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd

from rebal.domain.money import QUANTITY_PLACES
from rebal.errors import InputError, Problem
from rebal.io.sheet import IntArray, Sheet, exact_decimals, mask

__all__ = ["InputError", "Problem", "Source", "Tables", "check_book", "validate_tables"]

ACCOUNT_TYPES = ("taxable", "ira", "roth")
CASH = "CASH"
#: Weights of a model must sum to 100% within this many percentage points.
WEIGHT_SUM_TOLERANCE = 0.01
_FLOAT_SLACK = 1e-9
#: Added to the message of a money amount with more than 2 decimals.
BELOW_A_CENT = "an amount below a cent: money is kept to whole cents; round it to 2 decimals"


@dataclass(frozen=True)
class Schema:
    """The columns a table must have and the ones it may have."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def allowed(self) -> tuple[str, ...]:
        """Every column name the table accepts, required ones first."""
        return self.required + self.optional


MODELS = Schema(("model", "symbol", "weight"), ("band_abs", "band_rel", "rail_abs", "rail_rel"))
ACCOUNTS = Schema(
    ("account", "model", "cash"),
    ("type", "household", "can_trade", "restricted", "pending_cash", "liquidate"),
)
HOLDINGS = Schema(("account", "symbol", "quantity"), ("cost_basis", "acquired"))
PRICES = Schema(("symbol", "price"))


@dataclass(frozen=True)
class Source:
    """One table as read: its name for messages, its cells, and each row's source line.

    `frame` is None when the table could not be read (that problem is already recorded).
    `lines` defaults to the row position + 2 (the header is line 1).
    """

    name: str
    frame: pd.DataFrame | None
    lines: IntArray | None = None


@dataclass(frozen=True, eq=False)
class Tables:
    """The validated book, one normalised DataFrame (fresh RangeIndex) per table.

    - models: model, symbol, weight (fraction), band_abs, band_rel, rail_abs, rail_rel
      (fractions, NaN when not set); the same five exactly as written, as `Decimal` fractions
      (None when not set): weight_exact, band_abs_exact, band_rel_exact, rail_abs_exact,
      rail_rel_exact.
    - accounts: account, model ("" for none), cash_cents (int64), type, household,
      can_trade (bool), restricted (sorted tuple of symbols), pending_cents (int64),
      liquidate (bool).
    - holdings: account, symbol, quantity_micro (int64, whole micro-shares: shares x 10**6
      rounded down, what the core trades), quantity_rest_nano (int64, the nano-shares below
      the micro-share, 0 to 999: quantities have up to 9 decimals), cost_basis_cents
      (Int64, <NA> when not given), acquired (datetime.date or None), line (source line).
    - prices: symbol, price (float64), price_text (the price as written), price_exact (the
      price as written, as a `Decimal`).
    """

    models: pd.DataFrame
    accounts: pd.DataFrame
    holdings: pd.DataFrame
    prices: pd.DataFrame


def validate_tables(
    models: pd.DataFrame, accounts: pd.DataFrame, holdings: pd.DataFrame, prices: pd.DataFrame
) -> Tables:
    """Validate four DataFrames (cells may be strings or numbers) and return the `Tables`.

    Messages name the tables `models`, `accounts`, `holdings`, `prices`, with row numbers
    as if the frame were a file: the first row is line 2. Raises `InputError`.
    """
    return check_book(
        Source("models", models),
        Source("accounts", accounts),
        Source("holdings", holdings),
        Source("prices", prices),
    )


def check_book(
    models: Source,
    accounts: Source,
    holdings: Source,
    prices: Source,
    problems: tuple[Problem, ...] = (),
) -> Tables:
    """Validate the four tables plus the links between them; raise `InputError` on any problem.

    `problems` are ones already found while reading (a missing file, say); they are reported
    together with the rest. Problems are ordered by table (models, accounts, holdings,
    prices), then by line, file-level problems first.
    """
    found = list(problems)
    model_sheet = _open(models, MODELS, found)
    account_sheet = _open(accounts, ACCOUNTS, found)
    holding_sheet = _open(holdings, HOLDINGS, found)
    price_sheet = _open(prices, PRICES, found)

    model_names = None if model_sheet is None else set(model_sheet.text("model"))
    account_ids = None if account_sheet is None else set(account_sheet.text("account"))
    # A table that could not be opened has a problem on record, so it is never returned.
    unread = pd.DataFrame()
    tables = Tables(
        models=unread if model_sheet is None else _models(model_sheet),
        accounts=unread
        if account_sheet is None
        else _accounts(account_sheet, model_names, models.name),
        holdings=unread
        if holding_sheet is None
        else _holdings(holding_sheet, account_ids, accounts.name),
        prices=unread if price_sheet is None else _prices(price_sheet),
    )
    if found:
        order = {src.name: i for i, src in enumerate((models, accounts, holdings, prices))}
        found.sort(key=lambda p: (order.get(p.file, len(order)), p.row or 0))
        raise InputError(found)
    return tables


def _header_name(column: Hashable) -> str:
    return str(column).replace("\ufeff", "").strip()


def _open(source: Source, schema: Schema, problems: list[Problem]) -> Sheet | None:
    """Check the header of `source` and wrap it in a `Sheet`; None if it cannot be checked."""
    if source.frame is None:
        return None
    names = [_header_name(column) for column in source.frame.columns]
    missing = [name for name in schema.required if name not in names]
    unknown = [
        name or f"(unnamed column {i + 1})"
        for i, name in enumerate(names)
        if name not in schema.allowed
    ]
    repeated = sorted({name for name in names if names.count(name) > 1 and name})

    def file_problem(message: str) -> None:
        problems.append(Problem(source.name, None, None, message))

    if missing:
        file_problem(f"missing required column(s): {', '.join(missing)}{_semicolon_hint(names)}")
    if unknown and not (missing and _semicolon_hint(names)):
        file_problem(
            f"unknown column(s): {', '.join(unknown)}; allowed: {', '.join(schema.allowed)}"
        )
    if repeated:
        file_problem(f"repeated column(s): {', '.join(repeated)}")
    if missing or repeated:
        return None
    lines = source.lines
    if lines is None:
        lines = np.arange(2, len(source.frame) + 2, dtype=np.int64)
    return Sheet.from_frame(source.name, source.frame.set_axis(names, axis=1), lines, problems)


def _semicolon_hint(names: list[str]) -> str:
    """A hint when the header is one column with `;` in it: the file is `;`-separated (as
    spreadsheets save CSV in locales with a decimal comma), so no column could be found."""
    if len(names) == 1 and ";" in names[0]:
        return (
            f" (the header is one column, {names[0]!r}: the file looks ';'-separated; "
            "rebal reads comma-separated files)"
        )
    return ""


def _plain(text: pd.Series) -> pd.Series:
    """Text as an object column of Python strings, the form the core expects."""
    return text.astype(object)


def _flag_duplicates(
    sheet: Sheet,
    keys: dict[str, pd.Series | np.ndarray],
    among: np.ndarray | pd.Series,
    column: str | None,
    describe: Callable[[tuple[object, ...], int], str],
) -> None:
    """Report rows (of those in `among`) whose `keys` equal an earlier row's.

    `describe(key, first_line)` words the problem, reported on every repeat.
    """
    frame = pd.DataFrame(keys)[mask(among)]
    repeats = frame[frame.duplicated(keep=False)]
    first: dict[tuple[object, ...], int] = {}
    for position, key in zip(
        repeats.index, repeats.itertuples(index=False, name=None), strict=True
    ):
        if key in first:
            sheet.report(int(position), column, describe(key, int(sheet.lines[first[key]])))
        else:
            first[key] = int(position)


def _models(sheet: Sheet) -> pd.DataFrame:
    """Check models rows (weights, bands, rails, duplicates, sums) and normalise them."""
    model = sheet.required("model", "model name")
    symbol = sheet.symbols("symbol")
    weight, weight_exact = sheet.percent("weight", required=True, noun="weight")
    read = {
        column: sheet.percent(column, required=False, noun=column) for column in MODELS.optional
    }
    limits = {column: values for column, (values, _) in read.items()}
    for kind in ("abs", "rel"):
        band, rail = limits[f"band_{kind}"], limits[f"rail_{kind}"]
        band_text, rail_text = sheet.text(f"band_{kind}"), sheet.text(f"rail_{kind}")
        for position in np.flatnonzero((rail > band).to_numpy()):
            sheet.report(
                int(position),
                f"rail_{kind}",
                f"rail {rail_text[position]!r} is wider than its band_{kind} "
                f"{band_text[position]!r}",
            )
    _flag_duplicates(
        sheet,
        {"model": model, "symbol": symbol},
        mask(model != "") & mask(symbol != ""),
        "symbol",
        lambda key, line: f"duplicate symbol {key[1]!r} in model {key[0]!r} (first on line {line})",
    )
    _check_weight_sums(sheet, model, weight)
    return pd.DataFrame(
        {"model": _plain(model), "symbol": _plain(symbol), "weight": weight / 100}
        | {column: values / 100 for column, values in limits.items()}
        | {"weight_exact": weight_exact}
        | {f"{column}_exact": exact for column, (_, exact) in read.items()}
    )


def _check_weight_sums(sheet: Sheet, model: pd.Series, weight: pd.Series) -> None:
    """Each model's weights must sum to 100%; models with an unreadable weight are skipped."""
    unreadable = set(model[weight.isna()])
    by_model = pd.DataFrame({"total": weight, "row": np.arange(len(model))}).groupby(
        model, sort=False
    )
    totals = by_model.agg(total=("total", "sum"), row=("row", "first"))
    for name, total, row in zip(totals.index, totals["total"], totals["row"], strict=True):
        if name == "" or name in unreadable:
            continue
        if abs(total - 100) > WEIGHT_SUM_TOLERANCE + _FLOAT_SLACK:
            shown = f"{round(total, 6):f}".rstrip("0").rstrip(".")
            message = f"weights of model {name!r} sum to {shown}%, not 100%"
            if abs(total - 1) <= WEIGHT_SUM_TOLERANCE + _FLOAT_SLACK:
                # Fractions that sum to 1 (0.6 + 0.4): the weights were written as fractions.
                given = np.flatnonzero(mask(model == name) & mask(weight > 0))[0]
                first = sheet.text("weight")[given].removesuffix("%").strip()
                percent = f"{Decimal(first).scaleb(2).normalize():f}"
                message += f" (weights are percent: did you mean {percent} for {first}?)"
            sheet.report(int(row), "weight", message)


def _accounts(sheet: Sheet, model_names: set[str] | None, models_file: str) -> pd.DataFrame:
    """Check accounts rows (ids, model links, cash, flags) and normalise them."""
    account = sheet.required("account", "account id")
    model = sheet.text("model")
    if model_names is not None:
        sheet.flag(
            mask(model != "") & ~mask(model.isin(model_names)),
            "model",
            lambda v: f"unknown model {v!r} (not in {models_file})",
        )
    cash, _ = sheet.minor_units(
        "cash", 2, required=True, floor="any", noun="cash", hint=BELOW_A_CENT
    )
    account_type = sheet.choice("type", ACCOUNT_TYPES, "taxable", "account type")
    can_trade = sheet.boolean("can_trade", default=True)
    restricted = sheet.symbol_lists("restricted")
    pending, _ = sheet.minor_units(
        "pending_cash", 2, required=False, floor="any", noun="pending cash", hint=BELOW_A_CENT
    )
    liquidate = sheet.boolean("liquidate", default=False)
    _flag_duplicates(
        sheet,
        {"account": account},
        account != "",
        "account",
        lambda key, line: f"duplicate account {key[0]!r} (first on line {line})",
    )
    return pd.DataFrame(
        {
            "account": _plain(account),
            "model": _plain(model),
            "cash_cents": cash,
            "type": _plain(account_type),
            "household": _plain(sheet.text("household")),
            "can_trade": can_trade,
            "restricted": restricted,
            "pending_cents": pending,
            "liquidate": liquidate,
        }
    )


def _holdings(sheet: Sheet, account_ids: set[str] | None, accounts_file: str) -> pd.DataFrame:
    """Check holdings rows (accounts, symbols, quantities, lots) and normalise them."""
    account = sheet.required("account", "account id")
    if account_ids is not None:
        sheet.flag(
            mask(account != "") & ~mask(account.isin(account_ids)),
            "account",
            lambda v: f"unknown account {v!r} (not in {accounts_file})",
        )
    symbol = sheet.symbols("symbol")
    sheet.flag(
        symbol == CASH,
        "symbol",
        lambda _: "CASH cannot be held as a position; put cash in the accounts table",
    )
    quantity, rest, _ = sheet.split_units(
        "quantity", 6, QUANTITY_PLACES, required=True, floor="positive", noun="quantity"
    )
    cost, cost_given = sheet.minor_units(
        "cost_basis", 2, required=False, floor="nonnegative", noun="cost basis", hint=BELOW_A_CENT
    )
    acquired = sheet.dates("acquired")
    _flag_duplicates(
        sheet,
        {
            "account": account,
            "symbol": symbol,
            "quantity": quantity,
            "rest": rest,
            "cost": np.where(cost_given, cost, -1),
            "acquired": acquired,
        },
        sheet.ok,
        None,
        lambda _, line: f"duplicate of line {line} (all columns equal)",
    )
    return pd.DataFrame(
        {
            "account": _plain(account),
            "symbol": _plain(symbol),
            "quantity_micro": quantity,
            "quantity_rest_nano": rest,
            "cost_basis_cents": pd.arrays.IntegerArray(cost, ~cost_given),
            "acquired": acquired,
            "line": sheet.lines,
        }
    )


def _prices(sheet: Sheet) -> pd.DataFrame:
    """Check prices rows (positive finite prices, one per symbol) and normalise them."""
    symbol = sheet.symbols("symbol")
    price, text = sheet.price("price")
    _flag_duplicates(
        sheet,
        {"symbol": symbol},
        symbol != "",
        "symbol",
        lambda key, line: f"duplicate symbol {key[0]!r} (first on line {line})",
    )
    exact = exact_decimals(text, mask(np.isfinite(price) & (price > 0)))
    return pd.DataFrame(
        {"symbol": _plain(symbol), "price": price, "price_text": _plain(text), "price_exact": exact}
    )
