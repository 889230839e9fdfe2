"""Turn validated tables into the core's arrays, and name the rows and slots again afterwards.

This is the seam between the labelled world of files and DataFrames (account ids, symbols) and
the core's integer-indexed arrays. It does no I/O; it groups and aligns with pandas, in bulk,
so that a book of a million accounts is built without a Python loop per account.

Slot order within an account: the model's securities in the model's row order, then the
holdings outside the model in symbol order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from rebal.core.bands import BandParams
from rebal.core.book import BookArrays
from rebal.domain.money import from_micro, from_micro_nano
from rebal.io.tables import Tables

CASH = "CASH"
_BAND_COLUMNS = ("band_abs", "band_rel", "rail_abs", "rail_rel")


class FlowError(ValueError):
    """A deposit or withdrawal given on the command line is not usable."""


@dataclass(frozen=True, slots=True)
class Book:
    """A book ready for the core: arrays, and the labels of their rows and symbols."""

    arrays: BookArrays
    accounts: pd.DataFrame  # one row per array row: account, model, type, household, ...
    universe: tuple[str, ...]  # symbol of each index used in ``arrays.symbol``
    # The price of each symbol of ``universe`` as written (None where missing): what exact
    # output multiplies quantities by, where the core uses ``arrays.price`` (float64).
    exact_prices: tuple[Decimal | None, ...] = ()
    # Per slot (N, K), the nano-shares held below the micro-shares of ``arrays.quantity_micro``
    # (the sum of each holding's rest, 0 to 999 each); None when there are none. The core trades
    # whole micro-shares; exact output adds these back (``exact_quantities``).
    rest_nano: np.ndarray | None = None

    def symbols(self) -> np.ndarray:
        """Symbol name per slot (N, K), '' for padding."""
        names = np.array((*self.universe, ""), dtype=object)
        return names[self.arrays.symbol]  # -1 picks the trailing ''

    def exact_quantities(self, rows: np.ndarray, cols: np.ndarray) -> list[Decimal]:
        """The exact quantity held in each slot (``rows``, ``cols``), to the nano-share."""
        micro = self.arrays.quantity_micro[rows, cols].tolist()
        if self.rest_nano is None:
            return [from_micro(m) for m in micro]
        rest = self.rest_nano[rows, cols].tolist()
        return [from_micro_nano(m, r) for m, r in zip(micro, rest, strict=True)]


def _band_params(
    frame: pd.DataFrame | Mapping[str, Any],
    rows: np.ndarray,
    cols: np.ndarray,
    shape: tuple[int, int],
) -> BandParams | None:
    """Per-slot overrides from the model rows (a frame, or columns of floats, with the band
    columns); None when no row sets any."""
    given = {name: np.asarray(frame[name], dtype=np.float64) for name in _BAND_COLUMNS}
    if all(np.isnan(values).all() for values in given.values()):
        return None
    arrays = {}
    for name, values in given.items():
        out = np.full(shape, np.nan)
        out[rows, cols] = values
        arrays[name] = out
    # The wide band of the tiered policy follows the band; models.csv does not set it.
    nan = np.full(shape, np.nan)
    return BandParams(wide_abs=nan, wide_rel=nan.copy(), **arrays)


def slot_prices(
    symbol: np.ndarray, universe: tuple[str, ...], prices: pd.DataFrame
) -> tuple[np.ndarray, tuple[Decimal | None, ...]]:
    """The price of each slot of ``symbol`` (indices into ``universe``; NaN for padding and
    for a symbol without a price) and each universe symbol's exact price, from the frame of
    :attr:`rebal.io.tables.Tables.prices`."""
    of = prices.set_index("symbol").reindex(list(universe))
    universe_price = of["price"].to_numpy(dtype=np.float64)
    price = np.where(symbol >= 0, universe_price[symbol], np.nan)
    return price, tuple(None if pd.isna(p) else p for p in of["price_exact"].to_list())


def with_prices(book: Book, prices: pd.DataFrame) -> Book:
    """``book`` valued at ``prices`` (the frame of :attr:`rebal.io.tables.Tables.prices`): the
    same accounts and slots, as :func:`build_book` would arrange them at these prices."""
    price, exact = slot_prices(book.arrays.symbol, book.universe, prices)
    return replace(book, arrays=replace(book.arrays, price=price), exact_prices=exact)


def apply_flows(accounts: pd.DataFrame, flows: Mapping[str, int]) -> pd.DataFrame:
    """Return ``accounts`` with extra pending cash (cents, deposit positive) added per account.

    Raises
    ------
    FlowError
        If a flow names an account that is not in the book.
    """
    if not flows:
        return accounts
    unknown = sorted(set(flows) - set(accounts["account"]))
    if unknown:
        raise FlowError(f"deposit/withdrawal for unknown account(s): {', '.join(unknown)}")
    extra = accounts["account"].map(flows).fillna(0).astype(np.int64)
    return accounts.assign(pending_cents=accounts["pending_cents"] + extra)


def _book(
    accounts: pd.DataFrame,
    *,
    universe: tuple[str, ...],
    exact_prices: tuple[Decimal | None, ...],
    rest_nano: np.ndarray | None,
    **slots: Any,
) -> Book:
    """The book of ``accounts`` with the arrays of its slots and of its models' CASH rows
    (``slots``: the other fields of :class:`~rebal.core.book.BookArrays`)."""
    arrays = BookArrays(
        cash_cents=accounts["cash_cents"].to_numpy(dtype=np.int64),
        pending_cents=accounts["pending_cents"].to_numpy(dtype=np.int64),
        has_model=(accounts["model"] != "").to_numpy(),
        can_trade=accounts["can_trade"].to_numpy(dtype=bool),
        liquidate=accounts["liquidate"].to_numpy(dtype=bool),
        **slots,
    )
    return Book(
        arrays=arrays,
        accounts=accounts,
        universe=universe,
        exact_prices=exact_prices,
        rest_nano=rest_nano,
    )


def build_book(
    tables: Tables,
    flows: Mapping[str, int] | None = None,
    extra_slots: pd.DataFrame | None = None,
) -> Book:
    """Return the arrays of ``tables``; ``flows`` adds pending cash (cents) per account.

    ``extra_slots`` (columns ``account``, ``symbol``) adds empty slots (quantity 0, target 0)
    for securities an account may buy without holding or targeting them: the substitutes of the
    tax layer (`rebal.tax_overlay`). A slot already present is not repeated.
    """
    accounts = apply_flows(tables.accounts.reset_index(drop=True), flows or {})
    n = len(accounts)
    row_of = pd.Series(np.arange(n), index=accounts["account"])

    models = tables.models.assign(order=np.arange(len(tables.models)))
    securities = models[models["symbol"] != CASH]
    cash_rows = models[models["symbol"] == CASH].set_index("model")

    targets = (
        accounts[["account", "model"]]
        .assign(row=np.arange(n))
        .merge(securities, on="model", how="inner")
    )
    held = (
        tables.holdings.groupby(["account", "symbol"], sort=False)[
            ["quantity_micro", "quantity_rest_nano"]
        ]
        .sum()
        .reset_index()
    )
    if extra_slots is not None and len(extra_slots):
        empty = extra_slots[["account", "symbol"]].assign(
            quantity_micro=np.int64(0), quantity_rest_nano=np.int64(0)
        )
        held = pd.concat([held, empty], ignore_index=True).drop_duplicates(
            ["account", "symbol"], keep="first"
        )
    held["row"] = row_of.reindex(held["account"]).to_numpy()
    slots = targets[["row", "symbol", "weight", "order", *_BAND_COLUMNS]].merge(
        held[["row", "symbol", "quantity_micro", "quantity_rest_nano"]],
        on=["row", "symbol"],
        how="outer",
    )
    banned = (
        accounts[["restricted"]]
        .assign(row=np.arange(n))
        .explode("restricted")
        .dropna()
        .rename(columns={"restricted": "symbol"})
        .assign(restricted=True)
    )
    slots = slots.merge(banned, on=["row", "symbol"], how="left")
    slots["restricted"] = slots["restricted"].astype("boolean").fillna(False)
    slots["in_model"] = slots["order"].notna()
    for column in ("quantity_micro", "quantity_rest_nano"):
        slots[column] = slots[column].fillna(0).astype(np.int64)
    slots["weight"] = slots["weight"].fillna(0.0)
    slots = slots.sort_values(
        ["row", "in_model", "order", "symbol"], ascending=[True, False, True, True]
    )
    slot = slots.groupby("row", sort=False).cumcount().to_numpy()
    rows = slots["row"].to_numpy(dtype=np.int64)
    k = int(slot.max()) + 1 if len(slot) else 1
    shape = (n, k)

    codes, universe = pd.factorize(slots["symbol"])
    symbol = np.full(shape, -1, dtype=np.int64)
    symbol[rows, slot] = codes
    quantity = np.zeros(shape, dtype=np.int64)
    quantity[rows, slot] = slots["quantity_micro"].to_numpy()
    rest: np.ndarray | None = None
    if slots["quantity_rest_nano"].any():
        rest = np.zeros(shape, dtype=np.int64)
        rest[rows, slot] = slots["quantity_rest_nano"].to_numpy()
    target = np.zeros(shape)
    target[rows, slot] = slots["weight"].to_numpy()
    price, exact = slot_prices(symbol, tuple(universe), tables.prices)

    restricted = np.zeros(shape, dtype=bool)
    restricted[rows, slot] = slots["restricted"].to_numpy(dtype=bool)

    cash = cash_rows.reindex(accounts["model"])
    has_cash_target = cash["weight"].notna().to_numpy()
    one = np.arange(n)
    return _book(
        accounts,
        symbol=symbol,
        quantity_micro=quantity,
        price=price,
        target=target,
        overrides=_band_params(slots, rows, slot, shape),
        restricted=restricted,
        cash_target=cash["weight"].fillna(0.0).to_numpy(dtype=np.float64),
        cash_overrides=_band_params(cash.reset_index(drop=True), one, np.zeros(n, int), (n, 1)),
        has_cash_target=has_cash_target,
        universe=tuple(universe),
        exact_prices=exact,
        rest_nano=rest,
    )


def _rows(frame: pd.DataFrame, columns: list[str]) -> Iterator[tuple[Any, ...]]:
    """The values of ``columns`` row by row, as Python objects (faster than ``itertuples``)."""
    return zip(*(frame[c].tolist() for c in columns), strict=True)


def build_few(tables: Tables) -> Book:
    """The book :func:`build_book` arranges of ``tables`` (no flows, no extra slots), arranged
    account by account in Python: for a few accounts (a scheduler snapshot's changed ones),
    without the fixed cost of pandas' merges, sorts and groupings, which does not shrink with
    the rows. The same slots in the same order, the same universe and arrays."""
    accounts = tables.accounts.reset_index(drop=True)
    n = len(accounts)
    columns = ["model", "symbol", "weight", *_BAND_COLUMNS]
    securities: dict[str, list[tuple[str, float, tuple[float, ...]]]] = defaultdict(list)
    cash: dict[str, tuple[float, tuple[float, ...]]] = {}
    for model, symbol, weight, *limits in _rows(tables.models, columns):
        if symbol == CASH:
            cash[model] = (float(weight), tuple(limits))
        else:
            securities[model].append((symbol, float(weight), tuple(limits)))
    held: dict[str, dict[str, list[int]]] = defaultdict(dict)
    held_columns = ["account", "symbol", "quantity_micro", "quantity_rest_nano"]
    for account, symbol, micro, rest in _rows(tables.holdings, held_columns):
        total = held[account].setdefault(symbol, [0, 0])
        total[0] += int(micro)
        total[1] += int(rest)
    unset = (np.nan,) * len(_BAND_COLUMNS)
    slots: list[list[tuple[str, float, tuple[float, ...], list[int]]]] = []
    for account, model in _rows(accounts, ["account", "model"]):
        mine = held.get(account, {})
        named = securities.get(model, [])
        inside = {symbol for symbol, _, _ in named}
        slots.append(
            [(s, w, limits, mine.get(s, [0, 0])) for s, w, limits in named]
            + [(s, 0.0, unset, mine[s]) for s in sorted(mine) if s not in inside]
        )
    k = max((len(row) for row in slots), default=0) or 1
    shape = (n, k)
    code: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    codes: list[int] = []
    micros: list[int] = []
    nanos: list[int] = []
    weights: list[float] = []
    bans: list[bool] = []
    slot_limits: list[tuple[float, ...]] = []
    for i, (row, banned) in enumerate(zip(slots, accounts["restricted"].tolist(), strict=True)):
        for j, (name, weight, widths, (micro, nano)) in enumerate(row):
            rows.append(i)
            cols.append(j)
            codes.append(code.setdefault(name, len(code)))
            micros.append(micro)
            nanos.append(nano)
            weights.append(weight)
            bans.append(name in banned)
            slot_limits.append(widths)
    universe = tuple(code)

    def laid_out(values: list[Any], fill: Any, dtype: Any) -> np.ndarray:
        out = np.full(shape, fill, dtype=dtype)
        out[rows, cols] = values
        return out

    symbol = laid_out(codes, -1, np.int64)
    quantity = laid_out(micros, 0, np.int64)
    rest = laid_out(nanos, 0, np.int64)
    target = laid_out(weights, 0.0, np.float64)
    restricted = laid_out(bans, False, bool)
    price, exact = slot_prices(symbol, universe, tables.prices)
    slot_widths = np.array(slot_limits, dtype=np.float64).reshape(
        len(slot_limits), len(_BAND_COLUMNS)
    )
    cash_of = [cash.get(model) for model in accounts["model"]]
    cash_widths = np.array(
        [unset if c is None else c[1] for c in cash_of], dtype=np.float64
    ).reshape(n, len(_BAND_COLUMNS))
    return _book(
        accounts,
        symbol=symbol,
        quantity_micro=quantity,
        price=price,
        target=target,
        overrides=_band_params(
            dict(zip(_BAND_COLUMNS, slot_widths.T, strict=True)),
            np.array(rows),
            np.array(cols),
            shape,
        ),
        restricted=restricted,
        cash_target=np.array([0.0 if c is None else c[0] for c in cash_of], dtype=np.float64),
        cash_overrides=_band_params(
            dict(zip(_BAND_COLUMNS, cash_widths.T, strict=True)),
            np.arange(n),
            np.zeros(n, int),
            (n, 1),
        ),
        has_cash_target=np.array([c is not None for c in cash_of], dtype=bool),
        universe=universe,
        exact_prices=exact,
        rest_nano=rest if rest.any() else None,
    )
