"""`rebal scheduler` as a user runs it: one tick's JSON, dry runs, two schedulers at once, the
long-running loop stopped by SIGTERM, and `rebal run --instant` feeding the next tick."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rebal.adapters.calendars.exchange import ExchangeCalendar
from rebal.cli.main import app
from rebal.compliance.hours import managed_run_at

FILES = {
    "models.csv": "model,symbol,weight\nbalanced,VTI,60\nbalanced,BND,40\n",
    "accounts.csv": "account,model,cash\nA1,balanced,1000.00\nA2,balanced,1000.00\n",
    "holdings.csv": "account,symbol,quantity\nA1,VTI,40\nA2,VTI,40\n",
    "prices.csv": "symbol,price\nVTI,250.00\nBND,72.50\n",
}
AGE = ["--max-price-age", str(24 * 10)]  # the next window may be days after the import
CALENDAR = ExchangeCalendar.around(datetime.now(UTC), days_before=10, days_after=30)
REBAL = [sys.executable, "-c", "from rebal.cli.main import app; app(prog_name='rebal')"]


def _window() -> datetime:
    """A minute into the next managed window after now (the prices are quoted at the import)."""
    now = datetime.now(UTC)
    session = CALENDAR.next_session(now)
    at = managed_run_at(session.close) + timedelta(minutes=1)
    return max(at, now + timedelta(minutes=1)) if at < session.close else at


@pytest.fixture
def db(tmp_path: Path) -> str:
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    url = f"sqlite:///{tmp_path / 'rebal.db'}"
    runner = CliRunner()
    assert runner.invoke(app, ["db", "init", "--db", url]).exit_code == 0
    args = [f"--{n.removesuffix('.csv')}={tmp_path / n}" for n in FILES]
    done = runner.invoke(app, ["db", "import", *args, "--db", url])
    assert done.exit_code == 0, done.output
    return url


def _tick(db: str, at: datetime, *more: str) -> list[dict[str, object]]:
    args = ["scheduler", "--once", "--as-of", at.isoformat(), *AGE, *more]
    done = CliRunner().invoke(app, [*args, "--format", "json", "--db", db])
    assert done.exit_code == 0, done.output
    rows: list[dict[str, object]] = json.loads(done.stdout)["accounts"]
    return rows


def _runs(db: str) -> list[dict[str, object]]:
    done = CliRunner().invoke(app, ["runs", "--format", "json", "--db", db])
    assert done.exit_code == 0, done.output
    runs: list[dict[str, object]] = json.loads(done.stdout)["runs"]
    return runs


def test_one_tick_prints_the_documented_keys_and_a_dry_run_creates_no_run(db: str) -> None:
    at = _window()
    rows = _tick(db, at, "--dry-run")
    assert [list(r) for r in rows] == [
        ["account", "trigger", "decision", "run_id", "next_check_at", "reason"]
    ] * 2
    assert [(r["account"], r["trigger"], r["decision"], r["run_id"]) for r in rows] == [
        ("A1", "calendar", "run", None),
        ("A2", "calendar", "run", None),
    ]
    next_check = datetime.fromisoformat(str(rows[0]["next_check_at"]))
    following = CALENDAR.next_session(CALENDAR.next_session(at).close + timedelta(seconds=1))
    assert next_check == managed_run_at(following.close)
    assert _runs(db) == []


def test_a_tick_creates_the_runs_and_a_repeated_tick_none(db: str) -> None:
    at = _window()
    first = _tick(db, at)
    assert all(r["decision"] == "run" and r["run_id"] for r in first)
    again = _tick(db, at)
    assert [r["decision"] for r in again] == ["not_due", "not_due"]
    assert sorted(str(r["id"]) for r in _runs(db)) == sorted(str(r["run_id"]) for r in first)


def test_two_scheduler_processes_at_the_same_time_create_each_run_once(db: str) -> None:
    args = [
        "scheduler",
        "--once",
        "--as-of",
        _window().isoformat(),
        *AGE,
        "--format",
        "json",
        "--db",
        db,
    ]
    procs = [
        subprocess.Popen(
            [*REBAL, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    seen = {
        str(r["run_id"]) for out, _ in outputs for r in json.loads(out)["accounts"] if r["run_id"]
    }
    runs = _runs(db)
    assert len(runs) == 2 and {str(r["id"]) for r in runs} == seen


def test_the_loop_stops_cleanly_on_sigterm_between_ticks(db: str) -> None:
    proc = subprocess.Popen(
        [*REBAL, "scheduler", "--interval", "0.2", "--dry-run", "--format", "json", "--db", db],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    assert proc.stdout is not None
    try:
        ticks = 0
        while ticks < 2:  # two whole ticks printed: the loop is looping
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            ticks += line.strip() == "]}"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "scheduler stopped after" in err
    assert out.count('{"accounts": [') == out.count("]}")  # no tick cut in the middle


def test_an_instant_request_while_closed_waits_for_the_market_then_resets_the_clock(
    db: str, tmp_path: Path
) -> None:
    policies = tmp_path / "policies.csv"
    policies.write_text("account,program\nA1,client_directed\nA2,client_directed\n")
    done = CliRunner().invoke(app, ["db", "import", "--policies", str(policies), "--db", db])
    assert done.exit_code == 0, done.output
    session = CALENDAR.next_session(datetime.now(UTC) + timedelta(minutes=1))
    closed = session.close + timedelta(hours=1)
    asked = CliRunner().invoke(
        app, ["run", "--account", "A1", "--instant", "--as-of", closed.isoformat(), "--db", db]
    )
    assert asked.exit_code == 0, asked.output
    assert "market is closed" in asked.output and _runs(db) == []
    opened = CALENDAR.next_open(closed) + timedelta(minutes=1)
    rows = {r["account"]: r for r in _tick(db, opened)}
    assert (rows["A1"]["trigger"], rows["A1"]["decision"]) == ("instant", "run")
    assert rows["A2"]["decision"] == "not_due"  # before the window
    window = managed_run_at(CALENDAR.next_session(opened).close) + timedelta(minutes=1)
    rows = {r["account"]: r for r in _tick(db, window)}
    assert rows["A1"]["decision"] == "not_due"  # ran today, instantly
    assert datetime.fromisoformat(str(rows["A1"]["next_check_at"])) == opened + timedelta(days=7)
    assert rows["A2"]["decision"] == "run"


def test_instant_needs_one_account(db: str) -> None:
    done = CliRunner().invoke(app, ["run", "--all", "--instant", "--db", db])
    assert done.exit_code == 1 and "--instant is for one account" in done.output


def test_the_table_names_every_account_and_as_of_needs_once(db: str) -> None:
    at = _window()
    args = ["scheduler", "--once", "--as-of", at.isoformat(), "--dry-run", *AGE, "--db", db]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "scheduler tick at" in done.output and "2 accounts" in done.output
    assert all(name in done.output for name in ("A1", "A2", "due on its calendar"))
    refused = CliRunner().invoke(app, ["scheduler", "--as-of", at.isoformat(), "--db", db])
    assert refused.exit_code == 1 and "give --once with it" in refused.output
