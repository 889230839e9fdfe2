"""The four book tables as domain records, and back as the four CSV files.

:func:`book_snapshot` turns validated :class:`~rebal.io.tables.Tables` into a
:class:`~rebal.domain.book.BookSnapshot` using the exact values the validation kept (weights,
bands and prices as `Decimal`, money in cents, quantities to the nano-share), never its floats.
:func:`write_book` writes a snapshot as the files ``rebal db import`` reads, in one canonical
form (docs/store.md): reading them back gives the same values, and writing those again gives the
same bytes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from rebal.domain.account import Account, AccountType, Holding, Price, Target
from rebal.domain.book import BookSnapshot
from rebal.domain.formatting import number_text
from rebal.domain.ids import AccountId, HouseholdId, ModelId, Symbol
from rebal.domain.money import CENT, MICRO, from_cents, from_micro_nano
from rebal.errors import Problem
from rebal.io.atomic import write_text_atomic
from rebal.io.tables import ACCOUNTS, HOLDINGS, MODELS, PRICES, Tables

#: The files of a book, in the order they are written and reported.
FILES = ("models.csv", "accounts.csv", "holdings.csv", "prices.csv")
_LIMITS = ("band_abs", "band_rel", "rail_abs", "rail_rel")


def _rows(frame: pd.DataFrame, columns: Sequence[str]) -> Iterable[tuple[Any, ...]]:
    return zip(*(frame[c].tolist() for c in columns), strict=True)


def book_snapshot(tables: Tables, at: datetime) -> BookSnapshot:
    """The records of a validated book; its prices are quoted at ``at``."""
    models: dict[ModelId, list[Target]] = {}
    columns = ("model", "symbol", "weight_exact", *(f"{c}_exact" for c in _LIMITS))
    for model, symbol, weight, *limits in _rows(tables.models, columns):
        models.setdefault(ModelId(str(model)), []).append(
            Target(
                symbol=Symbol(str(symbol)),
                weight=_decimal(weight),
                **{
                    name: _decimal(value) if value is not None else None
                    for name, value in zip(_LIMITS, limits, strict=True)
                },
            )
        )
    account_rows = _rows(
        tables.accounts,
        (
            "account",
            "model",
            "cash_cents",
            "type",
            "household",
            "can_trade",
            "restricted",
            "pending_cents",
            "liquidate",
        ),
    )
    accounts = tuple(
        Account(
            id=AccountId(str(account)),
            model=ModelId(str(model)) if model else None,
            cash=from_cents(int(cash)),
            type=AccountType(str(kind)),
            household=HouseholdId(str(household)) if household else None,
            can_trade=bool(can_trade),
            restricted=frozenset(map(Symbol, restricted)),
            pending_cash=from_cents(int(pending)),
            liquidate=bool(liquidate),
        )
        for account, model, cash, kind, household, can_trade, restricted, pending, liquidate in (
            account_rows
        )
    )
    holdings = tuple(
        Holding(
            account=AccountId(str(account)),
            symbol=Symbol(str(symbol)),
            quantity=from_micro_nano(int(micro), int(rest)),
            cost_basis=None if pd.isna(cost) else from_cents(int(cost)),
            acquired=acquired,
        )
        for account, symbol, micro, rest, cost, acquired in _rows(
            tables.holdings,
            (
                "account",
                "symbol",
                "quantity_micro",
                "quantity_rest_nano",
                "cost_basis_cents",
                "acquired",
            ),
        )
    )
    prices = tuple(
        Price(symbol=Symbol(str(symbol)), price=_decimal(price), at=at)
        for symbol, price in _rows(tables.prices, ("symbol", "price_exact"))
    )
    return BookSnapshot(
        models={m: tuple(t) for m, t in models.items()},
        accounts=accounts,
        holdings=holdings,
        prices=prices,
    )


def too_many_shares(tables: Tables, file: str, limit: int) -> list[Problem]:
    """A problem (in ``file``, on the holding's line) for every holding of ``limit`` shares or
    more: what a store whose quantity column has fixed digits cannot hold. A file may hold
    more (up to 10**12 shares); refusing here names the row instead of failing mid-import."""
    holdings = tables.holdings
    over = holdings[holdings["quantity_micro"] >= limit * MICRO]
    return [
        Problem(
            file,
            int(line),
            "quantity",
            f"{number_text(from_micro_nano(int(micro), int(rest)))} shares is too many for "
            "the store "
            f"(fewer than {limit:,} shares a holding)",
        )
        for micro, rest, line in _rows(over, ("quantity_micro", "quantity_rest_nano", "line"))
    ]


def _decimal(value: object) -> Decimal:
    if not isinstance(value, Decimal):
        raise TypeError(f"expected an exact Decimal from the validated tables, not {value!r}")
    return value


def _number(value: Decimal) -> str:
    """Plain decimal notation, every digit kept (no exponent): 40, 40.50, 0.0000001."""
    return format(value, "f")


def _percent(fraction: Decimal | None) -> str:
    return "" if fraction is None else _number(fraction.scaleb(2))


def _money(amount: Decimal | None) -> str:
    return "" if amount is None else _number(amount.quantize(CENT))


def _shares(quantity: Decimal) -> str:
    """A quantity without trailing zeros (the store keeps 9 places: 261.000000000 is 261)."""
    return _number(quantity.normalize()) if quantity else "0"


def _flag(value: bool) -> str:
    return "true" if value else "false"


def book_tables(book: BookSnapshot) -> dict[str, str]:
    """The text of the four files of ``book``, by file name."""
    models = [
        [model, t.symbol, _percent(t.weight), *(_percent(getattr(t, c)) for c in _LIMITS)]
        for model, targets in book.models.items()
        for t in targets
    ]
    accounts = [
        [
            a.id,
            a.model or "",
            _money(a.cash),
            a.type.value,
            a.household or "",
            _flag(a.can_trade),
            ";".join(sorted(a.restricted)),
            _money(a.pending_cash),
            _flag(a.liquidate),
        ]
        for a in book.accounts
    ]
    holdings = [
        [
            h.account,
            h.symbol,
            _shares(h.quantity),
            _money(h.cost_basis),
            "" if h.acquired is None else h.acquired.isoformat(),
        ]
        for h in book.holdings
    ]
    prices = [[p.symbol, _number(p.price)] for p in book.prices]
    schemas = (MODELS, ACCOUNTS, HOLDINGS, PRICES)
    return {
        name: _csv(schema.allowed, rows)
        for name, schema, rows in zip(
            FILES, schemas, (models, accounts, holdings, prices), strict=True
        )
    }


def _csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def write_book(directory: Path, book: BookSnapshot) -> dict[Path, int]:
    """Write the four files of ``book`` into ``directory`` (created if need be), each
    atomically; returns each file with its number of rows."""
    directory.mkdir(parents=True, exist_ok=True)
    counts = (
        sum(map(len, book.models.values())),
        len(book.accounts),
        len(book.holdings),
        len(book.prices),
    )
    written: dict[Path, int] = {}
    for (name, text), count in zip(book_tables(book).items(), counts, strict=True):
        write_text_atomic(directory / name, text)
        written[directory / name] = count
    return written
