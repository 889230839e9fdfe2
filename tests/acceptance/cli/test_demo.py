"""`make run`'s operating job (scripts/demo.py): the same steps on a small book, so the demo
cannot rot; and `rebal db import --as-of`, which makes it deterministic."""

from __future__ import annotations

import importlib.util
import json
from datetime import datetime
from pathlib import Path
from types import ModuleType

import pytest
from typer.testing import CliRunner

from rebal.adapters.calendars.exchange import ExchangeCalendar
from rebal.cli.main import app
from rebal.compliance.hours import managed_run_at

ROOT = Path(__file__).resolve().parents[3]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DEMO = _script()

BOOK = {
    "models.csv": "model,symbol,weight\nbalanced,VTI,60\nbalanced,BND,40\n",
    "accounts.csv": (
        "account,model,cash,type,household,can_trade,restricted,pending_cash,liquidate\n"
        "A1,balanced,1000.00,taxable,H1,true,,0.00,false\n"
        "A2,balanced,500.00,ira,H2,true,,-2000.00,false\n"
        "A3,balanced,0.00,roth,H3,true,,0.00,true\n"
    ),
    "holdings.csv": "account,symbol,quantity\nA1,VTI,40\nA2,VTI,20\nA2,BND,80\nA3,VTI,5\n",
    "prices.csv": "symbol,price\nVTI,250.00\nBND,72.50\n",
}


@pytest.fixture
def book(tmp_path: Path) -> Path:
    folder = tmp_path / "book"
    folder.mkdir()
    for name, text in BOOK.items():
        (folder / name).write_text(text)
    return folder


def test_the_demos_time_is_the_managed_run_of_a_regular_session() -> None:
    at = datetime.fromisoformat(DEMO.AS_OF)
    session = ExchangeCalendar(start=at.date(), end=at.date()).session(at.date())
    assert session is not None and not session.early_close
    assert managed_run_at(session.close) == at


def test_the_demo_trades_and_reconciles_a_small_book(
    book: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "demo.db"
    db.write_text("not a database: the demo starts from a fresh file")
    args = ["--db", str(db), "--book", str(book), "--account", "A1", "--account", "A2"]
    assert DEMO.main([*args, "--account", "A3"]) == 0
    out = capsys.readouterr().out
    assert "$ rebal db init" in out and "$ rebal reconcile" in out
    assert "3 account(s) reconcile: cash and every position agree exactly" in out
    assert out.rstrip().endswith(
        "runs: 3 (3 completed); orders: 5, 5 filled, 0 partly filled, 0 unfilled;"
        " everything reconciles"
    )
    # Recreated each time, and deterministic: the same runs, orders and fills again.
    done = CliRunner().invoke(app, ["runs", "--format", "json", "--db", f"sqlite:///{db}"])
    first = json.loads(done.stdout)["runs"]
    assert DEMO.main([*args, "--account", "A3"]) == 0
    again = CliRunner().invoke(app, ["runs", "--format", "json", "--db", f"sqlite:///{db}"])
    second = json.loads(again.stdout)["runs"]
    assert [(r["id"], r["state"], r["orders"]) for r in second] == [
        (r["id"], r["state"], r["orders"]) for r in first
    ]


def test_the_demo_runs_the_whole_book_by_default(
    book: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert DEMO.main(["--db", str(tmp_path / "demo.db"), "--book", str(book)]) == 0
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if x.startswith("run R")]  # its line, not its orders
    assert "rebalance of the whole book as of 2026-11-20: completed" in line
    assert out.rstrip().endswith(
        "runs: 1 (1 completed); orders: 5, 5 filled, 0 partly filled, 0 unfilled;"
        " everything reconciles"
    )


def test_the_demo_fails_when_a_step_fails(book: Path, tmp_path: Path) -> None:
    args = ["--db", str(tmp_path / "demo.db"), "--book", str(book), "--account", "NOPE"]
    assert DEMO.main(args) == 1


def test_import_as_of_quotes_the_prices_then(book: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rebal.db'}"
    runner = CliRunner()
    assert runner.invoke(app, ["db", "init", "--db", url]).exit_code == 0
    files = DEMO.book_args(book)
    done = runner.invoke(app, ["db", "import", *files, "--as-of", DEMO.AS_OF, "--db", url])
    assert done.exit_code == 0, done.output
    assert f"quoted as of {DEMO.AS_OF}" in done.stdout
    older = runner.invoke(
        app, ["db", "import", *files, "--as-of", "2026-11-19T10:00:00-05:00", "--db", url]
    )
    assert older.exit_code == 1
    assert "is older than the current one" in older.output
    assert "nothing was written" in older.output
    naive = runner.invoke(app, ["db", "import", *files, "--as-of", "2026-11-20T10:00", "--db", url])
    assert naive.exit_code == 1 and "has no time zone" in naive.output
