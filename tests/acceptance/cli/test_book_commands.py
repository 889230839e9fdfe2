"""`rebal drift` and `rebal propose` as a user runs them: files in, JSON/CSV/table out, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rebal.cli.main import app
from rebal.testkit import write_book_files

runner = CliRunner()

MODELS = "model,symbol,weight\nbal,VTI,60\nbal,BND,40\n"
ACCOUNTS = (
    "account,model,cash,pending_cash,restricted\n"
    "a1,bal,100.00,0,\n"
    "a2,bal,0,500.00,\n"
    "a3,bal,0,0,VTI\n"
    "a4,,50,0,\n"
)
HOLDINGS = (
    "account,symbol,quantity\n"
    "a1,VTI,90\na1,BND,10\n"
    "a2,VTI,60\na2,BND,40\n"
    "a3,VTI,90\na3,BND,10\n"
    "a4,VTI,1\n"
)
PRICES = "symbol,price\nVTI,10\nBND,10\n"


def _book(tmp_path: Path, **overrides: str) -> list[str]:
    files = {"models": MODELS, "accounts": ACCOUNTS, "holdings": HOLDINGS, "prices": PRICES}
    return write_book_files(tmp_path, {**files, **overrides})


def _json(args: list[str]) -> dict:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_propose_json_has_the_documented_keys_and_trades(tmp_path):
    doc = _json(["propose", *_book(tmp_path), "--policy", "full", "--format", "json"])

    assert set(doc) == {"accounts", "blotter"}
    by_id = {a["account"]: a for a in doc["accounts"]}
    a1 = by_id["a1"]
    assert {
        "account",
        "model",
        "status",
        "reason",
        "value",
        "cash",
        "cash_after",
        "positions",
        "trades",
        "weights_after",
    } <= set(a1)
    assert a1["status"] == "out_of_tolerance"
    assert set(a1["positions"][0]) >= {
        "symbol",
        "quantity",
        "price",
        "value",
        "weight",
        "target",
        "drift",
        "band_low",
        "band_high",
    }
    assert a1["positions"][0]["weight"] == pytest.approx(100 * 900 / 1100, abs=1e-4)  # percent
    # Value 1,100: VTI to 660 (sell 24 shares), BND to 440 (buy 340), cash 100 invested.
    # Each order carries what a broker needs: model, status, price used, order type.
    order = {"model": "bal", "status": "out_of_tolerance", "price": 10}
    assert a1["trades"] == [
        {
            "symbol": "VTI",
            "side": "sell",
            "quantity": 24,
            "amount": 240,
            **order,
            "order_type": "shares",
        },
        {
            "symbol": "BND",
            "side": "buy",
            "quantity": 34,
            "amount": 340,
            **order,
            "order_type": "notional",
        },
    ]
    assert a1["cash_after"] == 0.0
    assert a1["weights_after"] == {"VTI": 60.0, "BND": 40.0}
    assert by_id["a2"]["status"] == "new_deposit"
    assert by_id["a3"]["status"] == "needs_attention"
    assert not any(t["symbol"] == "VTI" for t in by_id["a3"]["trades"])
    assert by_id["a4"]["status"] == "no_portfolio_assigned" and by_id["a4"]["trades"] == []
    rows = {(r["symbol"], r["side"]): r for r in doc["blotter"]}
    assert set(next(iter(rows.values()))) == {"symbol", "side", "quantity", "amount", "accounts"}
    # a3 cannot sell its restricted VTI, and BND already holds all the rest: no BND trade there.
    assert rows[("BND", "buy")]["accounts"] == 2


def test_net_blotter_has_one_row_per_symbol(tmp_path):
    doc = _json(
        ["propose", *_book(tmp_path), "--policy", "full", "--all", "--net", "--format", "json"]
    )
    symbols = [r["symbol"] for r in doc["blotter"]]
    assert len(symbols) == len(set(symbols))


def test_whole_shares_give_integer_quantities(tmp_path):
    doc = _json(
        ["propose", *_book(tmp_path), "--whole-shares", "--deposit", "a1=33.33", "--format", "json"]
    )
    quantities = [t["quantity"] for a in doc["accounts"] for t in a["trades"]]
    assert quantities and all(q == int(q) for q in quantities)
    assert all(a["cash_after"] >= 0 for a in doc["accounts"])


def test_drift_csv_has_one_row_per_position(tmp_path):
    result = runner.invoke(app, ["drift", *_book(tmp_path), "--format", "csv"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0].split(",")[:3] == ["account", "status", "symbol"]
    assert len(lines) == 1 + 7


def test_propose_csv_lists_sells_before_buys(tmp_path):
    result = runner.invoke(
        app, ["propose", *_book(tmp_path), "--policy", "full", "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    rows = [line.split(",") for line in result.stdout.strip().splitlines()]
    assert rows[0] == [
        "account",
        "symbol",
        "side",
        "quantity",
        "amount",
        "model",
        "status",
        "price",
        "order_type",
    ]
    assert rows[1:3] == [
        ["a1", "VTI", "sell", "24", "240.00", "bal", "out_of_tolerance", "10", "shares"],
        ["a1", "BND", "buy", "34", "340.00", "bal", "out_of_tolerance", "10", "notional"],
    ]


def test_missing_price_is_not_a_crash_but_unable_to_check(tmp_path):
    doc = _json(["drift", *_book(tmp_path, prices="symbol,price\nVTI,10\n"), "--format", "json"])
    statuses = {a["account"]: (a["status"], a["reason"]) for a in doc["accounts"]}
    assert statuses["a1"] == ("unable_to_check", "no price for BND")


@pytest.mark.parametrize(
    ("table", "text", "message"),
    [
        ("models", "model,symbol\nbal,VTI\n", "models.csv: missing required column(s): weight"),
        ("models", "model,symbol,weight\nbal,VTI,60\nbal,BND,30\n", "sum to 90"),
        ("accounts", "account,model,cash\na1,nope,0\n", "line 2, column model"),
        ("holdings", "account,symbol,quantity\na1,VTI,-3\n", "holdings.csv line 2"),
        ("prices", "symbol,price\nVTI,abc\nBND,10\n", "prices.csv line 2, column price"),
        ("prices", "symbol,price\nVTI,10\nVTI,11\nBND,10\n", "line 3"),
        ("accounts", "account,model,cash,colour\na1,bal,0,red\n", "colour"),
    ],
)
def test_bad_input_names_file_line_and_problem_and_writes_nothing(tmp_path, table, text, message):
    out = tmp_path / "proposal.json"
    out.write_text("previous run\n")
    args = ["propose", *_book(tmp_path, **{table: text}), "--format", "json", "--output", str(out)]

    result = runner.invoke(app, args)

    assert result.exit_code == 1
    assert message in result.output
    assert out.read_text() == "previous run\n"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--deposit", "nobody=10"], "unknown account(s): nobody"),
        (["--deposit", "a1"], "expected ACCOUNT=AMOUNT"),
        (["--band-abs", "5", "--band-rel", "20"], "either --band-abs or --band-rel"),
        (["--band-rel", "lots"], "is not a percentage"),
        (["--min-trade", "-1"], "must not be negative"),
    ],
)
def test_bad_options_get_a_clear_error(tmp_path, extra, message):
    result = runner.invoke(app, ["propose", *_book(tmp_path), *extra])
    assert result.exit_code == 1
    assert message in result.output


def test_sample_book_runs_end_to_end_with_every_status():
    doc = _json(["propose", "--sample", "--format", "json"])
    statuses = {a["status"] for a in doc["accounts"]}
    assert statuses == {
        "no_portfolio_assigned",
        "unable_to_check",
        "needs_attention",
        "liquidation",
        "new_withdrawal",
        "new_deposit",
        "out_of_tolerance",
        "inside_tolerance",
    }
    assert doc["blotter"]
    for account in doc["accounts"]:
        assert account["cash_after"] >= 0 or account["status"] == "needs_attention"
