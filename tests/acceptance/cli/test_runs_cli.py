"""`rebal run` and `rebal runs` as a user types them, on a small book in a SQLite file."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rebal.adapters.calendars.exchange import ExchangeCalendar
from rebal.cli.main import app

#: When the test books' prices are quoted (``db import --as-of``): a Tuesday's regular session.
QUOTED_AT = "2026-11-24T14:00:00-05:00"


def _next_session_time() -> str:
    """Half an hour after the prices were quoted, in the same session: the runs' time, fixed so
    that no test depends on the wall clock (a weekend would make the quotes stale)."""
    at = datetime.fromisoformat(QUOTED_AT) + timedelta(minutes=30)
    assert ExchangeCalendar(start=at.date(), end=at.date()).is_open(at)
    return at.isoformat()


FILES = {
    "models.csv": "model,symbol,weight\nbalanced,VTI,60\nbalanced,BND,40\n",
    "accounts.csv": "account,model,cash\nA1,balanced,1000.00\nA2,balanced,1000.00\n",
    "holdings.csv": "account,symbol,quantity\nA1,VTI,40\nA2,VTI,40\n",
    "prices.csv": "symbol,price\nVTI,250.00\nBND,72.50\n",
}


def stored_book(folder: Path, files: dict[str, str]) -> str:
    """The URL of a SQLite file in ``folder`` holding the book of ``files`` (name → text)."""
    for name, text in files.items():
        (folder / name).write_text(text)
    url = f"sqlite:///{folder / 'rebal.db'}"
    runner = CliRunner()
    assert runner.invoke(app, ["db", "init", "--db", url]).exit_code == 0
    args = [f"--{n.removesuffix('.csv')}={folder / n}" for n in files]
    done = runner.invoke(app, ["db", "import", *args, "--as-of", QUOTED_AT, "--db", url])
    assert done.exit_code == 0, done.output
    return url


@pytest.fixture
def db(tmp_path: Path) -> str:
    return stored_book(tmp_path, FILES)


def _json(args: list[str]) -> list[dict[str, object]]:
    done = CliRunner().invoke(app, [*args, "--format", "json"])
    assert done.exit_code == 0, done.output
    runs: list[dict[str, object]] = json.loads(done.stdout)["runs"]
    return runs


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--account", "NOPE"], "unknown account 'NOPE'"),
        (["--model", "nope"], "unknown model 'nope'"),
        (["--account", "A1", "--model", "balanced"], "exactly one of"),
        (["--all", "--as-of", "2026-11-24T10:00"], "has no time zone"),
        (["--all", "--extended-hours"], "--extended-hours needs --order-type limit"),
        (["--all", "--order-type", "limit", "--limit-offset-bps", "ten"], "is not a number"),
        (["--all", "--algo", "twap", "--algo-slices", "3"], "--algo-window must be 1 to 1440"),
        (["--account", "A1", "--block-orders"], "--block-orders is for a batch"),
        (["--all", "--block-orders", "--whole-shares"], "it does not take --whole-shares"),
    ],
)
def test_bad_input_is_one_line_exit_1_and_nothing_stored(
    db: str, args: list[str], message: str
) -> None:
    done = CliRunner().invoke(app, ["run", *args, "--db", db])
    assert done.exit_code == 1
    assert message in done.output and len(done.output.strip().splitlines()) == 1
    assert _json(["runs", "--db", db]) == []


def test_run_trades_once_and_shows_the_documented_keys(db: str) -> None:
    as_of = _next_session_time()  # after the import, which quotes the prices then
    (run,) = _json(
        [
            "run",
            "--model",
            "balanced",
            "--policy",
            "full",
            "--as-of",
            as_of,
            "--max-price-age",
            "120",
            "--db",
            db,
        ]
    )
    assert run["state"] == "completed" and run["model"] == "balanced" and run["account"] is None
    assert {"id", "type", "state", "reason", "created_at", "orders", "events"} <= set(run)
    orders = run["orders"]
    assert isinstance(orders, list) and len(orders) == 4  # a sell and a buy per account
    assert {k for o in orders for k in o} >= {
        "client_order_id",
        "symbol",
        "side",
        "quantity",
        "notional",
        "state",
        "filled_quantity",
        "filled_avg_price",
    }
    (again,) = _json(
        [
            "run",
            "--model",
            "balanced",
            "--policy",
            "full",
            "--as-of",
            as_of,
            "--max-price-age",
            "120",
            "--db",
            db,
        ]
    )
    assert again["id"] == run["id"] and again["orders"] == orders  # the same run, not a new one
    broker = CliRunner().invoke(app, ["broker", "orders", "--format", "json", "--db", db])
    assert len(json.loads(broker.stdout)["orders"]) == 4  # nothing sent twice
    (shown,) = _json(["runs", "show", str(run["id"]), "--db", db])
    events = shown["events"]
    assert [e["state"] for e in events] == ["queued", "in_progress", "in_progress", "completed"]
    assert events[2]["reason"].startswith("checked 2 account(s): 0 reconciliation break(s)")
    assert shown["flags"] == []
    assert _json(["runs", "--state", "completed", "--db", db])[0]["id"] == run["id"]


def test_unknown_run_id_is_refused(db: str) -> None:
    for command in (["runs", "show", "R0"], ["runs", "cancel", "R0"], ["runs", "resume", "R0"]):
        done = CliRunner().invoke(app, [*command, "--db", db])
        assert done.exit_code == 1 and "unknown run 'R0'" in done.output, command


def test_order_options_reach_every_order_and_a_passive_limit_times_out(db: str) -> None:
    common = ["--account", "A1", "--policy", "full", "--max-price-age", "120", "--db", db]
    (run,) = _json(
        [
            "run",
            *common,
            "--as-of",
            _next_session_time(),
            "--order-type",
            "limit",
            "--limit-offset-bps",
            "-100",
            "--max-wait",
            "60",
        ]
    )
    assert run["state"] == "timeout" and "still working after 60 s, canceled" in run["reason"]
    (sell,) = run["orders"]
    assert (sell["type"], sell["limit_price"], sell["time_in_force"]) == ("limit", 252.5, "day")
    assert (sell["extended_hours"], sell["parent"], sell["state"]) == (False, None, "canceled")


def test_a_twap_run_shows_its_parents_and_children(db: str) -> None:
    args = ["--account", "A1", "--policy", "full", "--max-price-age", "120", "--db", db]
    (run,) = _json(
        [
            "run",
            *args,
            "--as-of",
            _next_session_time(),
            "--algo",
            "twap",
            "--algo-window",
            "4",
            "--algo-slices",
            "2",
        ]
    )
    parents = [o for o in run["orders"] if o["parent"] is None]
    children = [o for o in run["orders"] if o["parent"] is not None]
    assert len(parents) == 2 and len(children) == 4
    assert {c["parent"] for c in children} == {p["client_order_id"] for p in parents}
    assert all(o["state"] == "filled" for o in run["orders"])
    broker = CliRunner().invoke(app, ["broker", "orders", "--format", "json", "--db", db])
    sent = {o["client_order_id"] for o in json.loads(broker.stdout)["orders"]}
    assert sent == {c["client_order_id"] for c in children}  # parents are never sent


def test_a_run_in_block_orders_sends_one_block_per_symbol_and_side(db: str) -> None:
    args = ["--as-of", _next_session_time(), "--max-price-age", "120", "--db", db]
    (run,) = _json(["run", "--model", "balanced", "--policy", "full", "--block-orders", *args])
    assert run["state"] == "completed", run["reason"]
    orders = run["orders"]
    assert isinstance(orders, list) and len(orders) == 4
    assert all(o["state"] == "filled" for o in orders)
    done = CliRunner().invoke(app, ["broker", "orders", "--format", "json", "--db", db])
    blocks = json.loads(done.stdout)["orders"]
    assert [(b["client_order_id"], b["account"]) for b in blocks] == [
        (f"{run['id']}-BLOCK-VTI-s", "sim-omnibus"),
        (f"{run['id']}-BLOCK-BND-b", "sim-omnibus"),
    ]
    assert CliRunner().invoke(app, ["reconcile", "--db", db]).exit_code == 0
