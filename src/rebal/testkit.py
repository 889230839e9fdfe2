"""Shipped helpers for tests and notebooks: build a book from rows written like the CSV files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from rebal.io.book_arrays import Book, build_book
from rebal.io.tables import validate_tables


def make_book(
    models: Sequence[Sequence[object]],
    accounts: Sequence[Sequence[object]],
    holdings: Sequence[Sequence[object]],
    prices: dict[str, object],
    *,
    model_columns: Sequence[str] = ("model", "symbol", "weight"),
    account_columns: Sequence[str] = ("account", "model", "cash"),
    holding_columns: Sequence[str] = ("account", "symbol", "quantity"),
) -> Book:
    """Validate the four tables given as rows and build the core's book from them."""
    tables = validate_tables(
        pd.DataFrame(list(models), columns=list(model_columns)).astype(str),
        pd.DataFrame(list(accounts), columns=list(account_columns)).astype(str),
        pd.DataFrame(list(holdings), columns=list(holding_columns)).astype(str),
        pd.DataFrame(list(prices.items()), columns=["symbol", "price"]).astype(str),
    )
    return build_book(tables)


def write_book_files(directory: Path, tables: dict[str, str]) -> list[str]:
    """Write each table's CSV text to ``directory/<name>.csv``; return the matching CLI options.

    ``tables`` maps ``models``, ``accounts``, ``holdings`` and ``prices`` to file contents, so
    ``["propose", *write_book_files(tmp_path, tables)]`` runs the command line on them.
    """
    args = []
    for name, text in tables.items():
        path = directory / f"{name}.csv"
        path.write_text(text)
        args += [f"--{name}", str(path)]
    return args
