"""`rebal db init|import|export` as a user runs them, on SQLite and PostgreSQL: the schema
created once, a book in and out exactly, bad input refused with nothing written, a re-import
that versions models and replaces holdings and prices."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from rebal.adapters.storage.migrate import head
from rebal.adapters.storage.tables import metadata
from rebal.cli.main import app
from rebal.io.book_records import FILES
from rebal.io.csvfiles import read_tables
from rebal.testkit import write_book_files

runner = CliRunner()
SAMPLE = Path(str(resources.files("rebal") / "data" / "sample"))
BOOK = {
    "models": "model,symbol,weight\nbal,vti,60%\nbal,BND,40.0\ncash,CASH,100\n",
    "accounts": (
        "account,model,cash,restricted,pending_cash\n"
        "a1,bal,100,TSLA; aapl,0\n"
        "a2,bal,0.5,,500.00\n"
        "a3,,50,,\n"
    ),
    "holdings": "account,symbol,quantity,cost_basis,acquired\n"
    "a1,VTI,90.5,900,2024-01-02\na1,BND,10,,\na2,VTI,0.123456,,\n",
    "prices": "symbol,price\nVTI,10.00\nBND,9.8765\n",
}


def _run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def _files(directory: Path, **overrides: str) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    return write_book_files(directory, {**BOOK, **overrides})


def _rows(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                name: connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                for name, table in metadata.tables.items()
            }
    finally:
        engine.dispose()


def _tables(directory: Path) -> object:
    return read_tables(*(directory / name for name in FILES))


def test_init_creates_the_schema_once(database_url: str) -> None:
    created = _run("db", "init", "--db", database_url)
    assert f"created the rebal schema (revision {head()})" in created
    assert "already has the latest schema" in _run("db", "init", "--db", database_url)
    assert set(_rows(database_url)) == set(metadata.tables)


def test_a_book_goes_in_and_comes_back_value_for_value_then_byte_for_byte(
    database_url: str, tmp_path: Path
) -> None:
    _run("db", "init", "--db", database_url)
    out = _run("db", "import", *_files(tmp_path / "given"), "--db", database_url)
    assert "3 new, 0 changed, 0 closed" in out and "new versions: bal v1, cash v1" in out
    _run("db", "export", "--db", database_url, "--output", str(tmp_path / "first"))
    given, first = _tables(tmp_path / "given"), _tables(tmp_path / "first")
    for table in ("models", "accounts", "holdings"):
        pd.testing.assert_frame_equal(getattr(first, table), getattr(given, table))
    pd.testing.assert_frame_equal(
        first.prices.drop(columns="price_text"),  # type: ignore[attr-defined]
        given.prices.drop(columns="price_text"),
    )  # type: ignore[attr-defined]
    exported = [f"--{name.removesuffix('.csv')}={tmp_path / 'first' / name}" for name in FILES]
    again = _run("db", "import", *exported, "--db", database_url)
    assert "0 new, 0 changed, 0 closed" in again and "new versions: none" in again
    _run("db", "export", "--db", database_url, "--output", str(tmp_path / "second"))
    for name in FILES:
        assert (tmp_path / "second" / name).read_bytes() == (tmp_path / "first" / name).read_bytes()
    assert (tmp_path / "first" / "models.csv").read_text().splitlines()[1:3] == [
        "bal,VTI,60,,,,",
        "bal,BND,40.0,,,,",
    ]


def test_the_sample_book_imports_and_exports_as_shipped(database_url: str, tmp_path: Path) -> None:
    _run("db", "init", "--db", database_url)
    out = _run("db", "import", "--sample", "--db", database_url)
    assert "3,000 new" in out and "24,059" in out
    _run("db", "export", "--db", database_url, "-o", str(tmp_path))
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes(), name


def test_bad_input_is_refused_with_every_problem_and_nothing_written(
    database_url: str, tmp_path: Path
) -> None:
    _run("db", "init", "--db", database_url)
    _run("db", "import", *_files(tmp_path / "good"), "--db", database_url)
    before = _rows(database_url)
    bad = _files(
        tmp_path / "bad",
        accounts="account,model,cash\na1,bal,12x\na2,nope,1\na3,,1\n",
        holdings="account,symbol,quantity\na1,VTI,-1\n",
    )
    result = runner.invoke(app, ["db", "import", *bad, "--db", database_url])
    assert result.exit_code == 1
    assert "nothing was written" in result.output
    for problem in (
        "accounts.csv line 2, column cash: '12x' is not a number",
        "accounts.csv line 3, column model: unknown model 'nope'",
        "holdings.csv line 2, column quantity: negative quantity '-1'",
    ):
        assert problem in " ".join(result.output.split())
    assert _rows(database_url) == before


def test_a_reimport_versions_a_changed_model_and_replaces_holdings_and_prices(
    database_url: str, tmp_path: Path
) -> None:
    _run("db", "init", "--db", database_url)
    _run("db", "import", *_files(tmp_path / "one"), "--db", database_url, "--actor", "ann")
    changed = _files(
        tmp_path / "two",
        models="model,symbol,weight\nbal,VTI,70\nbal,BND,30\ncash,CASH,100\n",
        holdings="account,symbol,quantity\na1,VTI,1\n",
        prices="symbol,price\nVTI,11\n",
    )
    out = _run(
        "db", "import", *changed, "--db", database_url, "--actor", "bob", "--reason", "month end"
    )
    assert "new versions: bal v2" in out and "replaced in 2 accounts" in out
    _run("db", "export", "--db", database_url, "-o", str(tmp_path / "out"))
    assert (tmp_path / "out" / "models.csv").read_text().splitlines()[1] == "bal,VTI,70,,,,"
    assert (tmp_path / "out" / "holdings.csv").read_text().splitlines()[1:] == ["a1,VTI,1,,"]
    assert (tmp_path / "out" / "prices.csv").read_text() == "symbol,price\nVTI,11\n"
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            audit = metadata.tables["audit_log"]
            trail = connection.execute(
                sa.select(audit.c.actor, audit.c.reason, audit.c.entity, audit.c.key).order_by(
                    audit.c.seq
                )
            ).all()
            versions = connection.execute(
                sa.select(sa.func.count()).select_from(metadata.tables["model_versions"])
            ).scalar_one()
    finally:
        engine.dispose()
    assert versions == 3  # bal v1, bal v2, cash v1
    assert ("bob", "month end", "model", "bal/2") in trail
    assert ("bob", "month end", "holdings", "a2") in trail
    assert {actor for actor, reason, *_ in trail if reason != "month end"} == {"ann"}


def test_the_store_is_named_by_the_db_option_else_rebal_db_else_a_file_here(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.delenv("REBAL_DB", raising=False)
    assert "in sqlite:///rebal.db" in _run("db", "init")
    assert (here / "rebal.db").exists()
    monkeypatch.setenv("REBAL_DB", database_url)
    _run("db", "init")
    _run("db", "import", *_files(tmp_path / "book"))
    assert _rows(database_url)["accounts"] == 3
    assert _rows(f"sqlite:///{here / 'rebal.db'}")["accounts"] == 0
    _run("db", "import", *_files(tmp_path / "book"), "--db", "sqlite:///rebal.db")
    assert _rows(f"sqlite:///{here / 'rebal.db'}")["accounts"] == 3


def test_commands_on_a_store_that_is_not_set_up_say_what_to_do(
    database_url: str, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["db", "export", "--db", database_url, "-o", str(tmp_path)])
    assert result.exit_code == 1 and "rebal db init" in result.output
    _run("db", "init", "--db", database_url)
    result = runner.invoke(
        app, ["db", "export", "--db", database_url, "-o", str(tmp_path), "--firm", "acme"]
    )
    assert result.exit_code == 1 and "no firm 'acme'" in result.output
    assert list(tmp_path.glob("*.csv")) == []
