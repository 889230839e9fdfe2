"""The validated tables keep every number exactly as written (weights, bands and prices as
Decimals beside their floats), and a book written back as files reads as the same values and
writes as the same bytes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from rebal.io.book_records import FILES, book_snapshot, book_tables, write_book
from rebal.io.csvfiles import read_tables
from rebal.testkit import write_book_files

AT = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)
BOOK = {
    "models": (
        "model,symbol,weight,band_abs,rail_rel\n"
        "third,vti,33.3333333333,,\n"
        "third,BND, 33.3333333334 % ,2.50,10\n"
        "third,CASH,33.3333333333,,\n"
        "plain,VTI,100,,\n"
    ),
    "accounts": (
        "account,model,cash,restricted,type,household,pending_cash,can_trade,liquidate\n"
        '"ACC,1",third,10.5,"tsla; AAPL",IRA,H1,-250,yes,no\n'
        "ACC-2,,-3.10,,,,,,\n"
    ),
    "holdings": (
        "account,symbol,quantity,cost_basis,acquired\n"
        '"ACC,1",VTI,1.500000,100,2022-04-05\n'
        '"ACC,1",VTI,0.000001,,\n'
        "ACC-2,bnd,3,,\n"
    ),
    "prices": "symbol,price\nVTI,334.8700\nBND,.5\n",
}


def _read(directory: Path) -> pd.DataFrame:
    return read_tables(*(directory / name for name in FILES))


def test_weights_bands_and_prices_are_kept_as_written(tmp_path: Path) -> None:
    write_book_files(tmp_path, BOOK)
    tables = _read(tmp_path)
    models = tables.models
    assert models["weight_exact"].tolist() == [
        Decimal("0.333333333333"),
        Decimal("0.333333333334"),
        Decimal("0.333333333333"),
        Decimal("1.00"),
    ]
    assert models["band_abs_exact"].tolist() == [None, Decimal("0.0250"), None, None]
    assert models["rail_rel_exact"].tolist()[1] == Decimal("0.10")
    float_weight = models["weight"].tolist()[0]  # still there for the core, not exact
    assert float_weight == pytest.approx(0.333333333333) and Decimal(float_weight) != Decimal(
        "0.333333333333"
    )
    assert [format(p, "f") for p in tables.prices["price_exact"]] == ["334.8700", "0.5"]


def test_a_book_written_back_reads_as_the_same_values_and_writes_as_the_same_bytes(
    tmp_path: Path,
) -> None:
    (tmp_path / "given").mkdir()
    write_book_files(tmp_path / "given", BOOK)
    given = _read(tmp_path / "given")
    written = write_book(tmp_path / "once", book_snapshot(given, AT))
    assert {p.name: n for p, n in written.items()} == {
        "models.csv": 4,
        "accounts.csv": 2,
        "holdings.csv": 3,
        "prices.csv": 2,
    }
    once = _read(tmp_path / "once")
    for table in ("models", "accounts", "holdings"):
        pd.testing.assert_frame_equal(getattr(once, table), getattr(given, table))
    as_written = ["price_text"]  # ".5" comes back as "0.5": the same value
    pd.testing.assert_frame_equal(
        once.prices.drop(columns=as_written), given.prices.drop(columns=as_written)
    )
    assert book_tables(book_snapshot(once, AT)) == {
        name: (tmp_path / "once" / name).read_text() for name in FILES
    }
    accounts = (tmp_path / "once" / "accounts.csv").read_text().splitlines()
    assert accounts[1] == '"ACC,1",third,10.50,ira,H1,true,AAPL;TSLA,-250.00,false'
    assert (tmp_path / "once" / "models.csv").read_text().splitlines()[2] == (
        "third,BND,33.3333333334,2.50,,,10"
    )
