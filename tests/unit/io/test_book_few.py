"""``build_few`` arranges a few accounts' book as ``build_book`` does: the same arrays."""

from __future__ import annotations

from dataclasses import fields, replace
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from rebal.io.book_arrays import Book, build_book, build_few
from rebal.io.csvfiles import read_tables
from rebal.io.tables import Tables


def _sample() -> Tables:
    root = resources.files("rebal") / "data" / "sample"
    names = ("models", "accounts", "holdings", "prices")
    return read_tables(*(Path(str(root / f"{name}.csv")) for name in names))


SAMPLE = _sample()


def assert_same(few: Book, book: Book) -> None:
    assert few.universe == book.universe and few.exact_prices == book.exact_prices
    assert (few.rest_nano is None) == (book.rest_nano is None)
    if book.rest_nano is not None:
        assert np.array_equal(few.rest_nano, book.rest_nano)
    for f in fields(book.arrays):
        a, b = getattr(few.arrays, f.name), getattr(book.arrays, f.name)
        if f.name in ("overrides", "cash_overrides"):
            assert (a is None) == (b is None), f.name
            if b is not None:
                for g in fields(b):
                    assert np.array_equal(getattr(a, g.name), getattr(b, g.name), equal_nan=True), (
                        f.name,
                        g.name,
                    )
        else:
            assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), f.name


@settings(max_examples=40, deadline=None)
@given(
    picked=st.lists(st.integers(0, len(SAMPLE.accounts) - 1), max_size=30, unique=True),
    banded=st.booleans(),
    cash_row=st.booleans(),
    banned=st.booleans(),
    nano=st.booleans(),
)
def test_a_few_accounts_are_arranged_as_the_whole_book_arranges_them(
    picked: list[int], banded: bool, cash_row: bool, banned: bool, nano: bool
) -> None:
    accounts = SAMPLE.accounts.iloc[sorted(picked)].reset_index(drop=True)
    models = SAMPLE.models.copy()
    if banded:
        models.loc[0, "band_abs"] = 0.02
    if cash_row:
        model = models.loc[0, "model"]
        cash = models.iloc[[0]].assign(symbol="CASH", weight=0.05, band_rel=0.1)
        models = pd.concat([models, cash.assign(model=model)], ignore_index=True)
    if banned and len(accounts):
        accounts.at[0, "restricted"] = ("BND", "VTI")
    holdings = SAMPLE.holdings[SAMPLE.holdings["account"].isin(accounts["account"])].copy()
    if nano and len(holdings):
        holdings.iloc[0, holdings.columns.get_loc("quantity_rest_nano")] = 7
        holdings = pd.concat([holdings, holdings.iloc[[0]]], ignore_index=True)
    tables = replace(SAMPLE, accounts=accounts, models=models, holdings=holdings)
    assert_same(build_few(tables), build_book(tables))
