"""`rebal run --type harvest` as a user types it: a stored book with tax lots in a SQLite file,
harvested through the tax layer and traded once on the simulated broker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_runs_cli import _next_session_time, stored_book
from typer.testing import CliRunner

from rebal.cli.main import app

FILES = {
    "models.csv": "model,symbol,weight\nbalanced,VTI,60\nbalanced,BND,40\n",
    "accounts.csv": "account,model,cash,type\nT1,balanced,100.00,taxable\nI1,balanced,100.00,ira\n",
    "holdings.csv": "account,symbol,quantity,cost_basis,acquired\n"
    "T1,VTI,60,18000.00,2025-01-02\nT1,BND,140,10150.00,2025-01-02\n"
    "I1,VTI,60,18000.00,2025-01-02\nI1,BND,140,10150.00,2025-01-02\n",
    "prices.csv": "symbol,price\nVTI,250.00\nBND,72.50\nITOT,125.00\n",
}


@pytest.fixture
def db(tmp_path: Path) -> str:
    (tmp_path / "substitutes.txt").write_text("VTI,ITOT\n")
    return stored_book(tmp_path, FILES)


def _harvest(db: str, account: str, as_of: str) -> dict[str, object]:
    substitutes = Path(db.removeprefix("sqlite:///")).parent / "substitutes.txt"
    args = ["run", "--account", account, "--type", "harvest", "--substitutes", str(substitutes)]
    done = CliRunner().invoke(app, [*args, "--as-of", as_of, "--format", "json", "--db", db])
    assert done.exit_code == 0, done.output
    (run,) = json.loads(done.stdout)["runs"]
    assert isinstance(run, dict)
    return run


def test_a_harvest_run_sells_the_loss_and_buys_the_substitute_once(db: str, tmp_path: Path) -> None:
    as_of = _next_session_time()
    run = _harvest(db, "T1", as_of)
    assert run["type"] == "harvest" and run["state"] == "completed", run["reason"]
    trades = {(o["symbol"], o["side"]): o for o in run["orders"]}  # type: ignore[attr-defined]
    assert set(trades) == {("VTI", "sell"), ("ITOT", "buy")}
    assert trades["VTI", "sell"]["quantity"] == 60
    assert trades["ITOT", "buy"]["notional"] == 15000
    (reason,) = run["account_reasons"]  # type: ignore[misc]
    assert reason["account"] == "T1" and reason["reason"].startswith("harvest: Sell 60")
    again = _harvest(db, "T1", as_of)
    assert again["id"] == run["id"] and again["orders"] == run["orders"]
    broker = CliRunner().invoke(app, ["broker", "orders", "--format", "json", "--db", db])
    assert len(json.loads(broker.stdout)["orders"]) == 2  # nothing sent twice
    out = tmp_path / "export"
    assert (
        CliRunner().invoke(app, ["db", "export", "--output", str(out), "--db", db]).exit_code == 0
    )
    lots = (out / "holdings.csv").read_text().splitlines()
    assert not any(line.startswith("T1,VTI,") for line in lots)
    assert any(line.startswith("T1,ITOT,120,15000.00,") for line in lots)  # the new lot


def test_an_ira_account_gets_no_orders_and_the_reason(db: str) -> None:
    run = _harvest(db, "I1", _next_session_time())
    assert run["state"] == "completed" and run["orders"] == []
    assert run["account_reasons"] == [
        {
            "account": "I1",
            "status": "inside_tolerance",
            "reason": "not harvested: IRA accounts realise no taxable loss",
        }
    ]


def test_substitutes_are_only_for_a_harvest_run(db: str, tmp_path: Path) -> None:
    args = ["run", "--account", "T1", "--substitutes", str(tmp_path / "substitutes.txt")]
    done = CliRunner().invoke(app, [*args, "--db", db])
    assert done.exit_code == 1 and "--substitutes is for --type harvest" in done.output


def test_a_bad_substitutes_file_is_named_and_nothing_is_stored(db: str, tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_text("VTI\n")
    args = [
        "run",
        "--account",
        "T1",
        "--type",
        "harvest",
        "--substitutes",
        str(tmp_path / "bad.txt"),
    ]
    done = CliRunner().invoke(app, [*args, "--db", db])
    assert done.exit_code == 1 and "bad.txt" in done.output and "two symbols" in done.output
    runs = CliRunner().invoke(app, ["runs", "--format", "json", "--db", db])
    assert json.loads(runs.stdout)["runs"] == []
