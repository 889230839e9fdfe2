"""A holding of up to 9 decimals of shares comes out of `rebal drift`, `rebal propose` and
`rebal db import|export` exactly as it went in; the orders trade whole micro-shares of it."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from rebal.adapters.storage.book_frames import read_tables as store_tables
from rebal.adapters.storage.database import create_engine
from rebal.adapters.storage.unit_of_work import SqlStore
from rebal.cli.main import app
from rebal.clock import SystemClock
from rebal.io.csvfiles import read_tables
from rebal.testkit import write_book_files

runner = CliRunner()
BOOK = {
    "models": "model,symbol,weight\nbal,VTI,60\nbal,BND,40\n",
    "accounts": "account,model,cash,liquidate\na1,bal,100.00,false\na2,bal,0,true\n",
    "holdings": (
        "account,symbol,quantity\n"
        "a1,VTI,10.123456789\na1,BND,0.000000001\na1,BND,5\n"
        "a2,VTI,1.999999999\n"
    ),
    "prices": "symbol,price\nVTI,100\nBND,10\n",
}
HELD = {
    ("a1", "VTI"): Decimal("10.123456789"),
    ("a1", "BND"): Decimal("5.000000001"),
    ("a2", "VTI"): Decimal("1.999999999"),
}


def _run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def _positions(doc: dict) -> dict[tuple[str, str], dict]:
    """The positions held (a2's BND slot, of its model but not held, left out)."""
    return {
        (a["account"], p["symbol"]): p
        for a in doc["accounts"]
        for p in a["positions"]
        if p["quantity"]
    }


def test_drift_json_and_csv_show_the_quantity_to_the_nano_share(tmp_path: Path) -> None:
    files = write_book_files(tmp_path, BOOK)
    doc = json.loads(_run("drift", *files, "--format", "json"), parse_float=Decimal)
    positions = _positions(doc)
    assert {key: p["quantity"] for key, p in positions.items()} == HELD
    assert positions["a1", "VTI"]["value"] == Decimal("1012.35")  # 10.123456789 x 100

    csv = pd.read_csv(io.StringIO(_run("drift", *files, "--format", "csv")), dtype=str)
    rows = {(r.account, r.symbol): Decimal(r.quantity) for r in csv.itertuples()}
    assert {key: q for key, q in rows.items() if q} == HELD


def test_propose_keeps_the_positions_exact_and_sells_only_micro_shares_held(
    tmp_path: Path,
) -> None:
    files = write_book_files(tmp_path, BOOK)
    doc = json.loads(_run("propose", *files, "--format", "json"), parse_float=Decimal)
    assert {key: p["quantity"] for key, p in _positions(doc).items()} == HELD
    (a2,) = [a for a in doc["accounts"] if a["account"] == "a2"]
    # Liquidation sells the whole micro-shares; the nano-shares below them stay held.
    assert [(t["side"], t["quantity"]) for t in a2["trades"]] == [("sell", Decimal("1.999999"))]


def test_db_import_then_export_gives_the_quantities_back(database_url: str, tmp_path: Path) -> None:
    _run("db", "init", "--db", database_url)
    (tmp_path / "given").mkdir()
    _run("db", "import", *write_book_files(tmp_path / "given", BOOK), "--db", database_url)
    _run("db", "export", "--db", database_url, "-o", str(tmp_path / "out"))

    assert (tmp_path / "out" / "holdings.csv").read_text().splitlines()[1:] == [
        "a1,VTI,10.123456789,,",
        "a1,BND,0.000000001,,",
        "a1,BND,5,,",
        "a2,VTI,1.999999999,,",
    ]


def test_db_import_names_a_holding_too_large_for_the_store(
    database_url: str, tmp_path: Path
) -> None:
    _run("db", "init", "--db", database_url)
    holdings = "account,symbol,quantity\na1,VTI,1\na2,VTI,340000000000.123456789\n"
    files = write_book_files(tmp_path, {**BOOK, "holdings": holdings})
    result = runner.invoke(app, ["db", "import", *files, "--db", database_url])

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: the book has problems; nothing was written:",
        "holdings.csv line 3, column quantity: 340000000000.123456789 shares is too many for "
        "the store (fewer than 1,000,000,000 shares a holding)",
    ]
    nothing = runner.invoke(app, ["db", "export", "--db", database_url, "-o", str(tmp_path / "o")])
    assert "import a book first" in nothing.stderr


def test_the_schedulers_bulk_read_of_the_store_splits_quantities_as_the_files_do(
    database_url: str, tmp_path: Path
) -> None:
    files = write_book_files(tmp_path, BOOK)
    _run("db", "init", "--db", database_url)
    _run("db", "import", *files, "--db", database_url)
    engine = create_engine(database_url)
    try:
        with SqlStore(engine, SystemClock()).unit_of_work(actor="t", reason="read") as uow:
            stored = store_tables(uow).holdings
    finally:
        engine.dispose()
    given = read_tables(*map(Path, files[1::2])).holdings
    columns = ["account", "symbol", "quantity_micro", "quantity_rest_nano"]
    assert stored[columns].values.tolist() == given[columns].values.tolist()
