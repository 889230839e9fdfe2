"""Numbers as `rebal drift` / `rebal propose` write them: plain digits, and the exact decimal of
every quantity and amount in every format (table, JSON, CSV) and in the Python API."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rebal import api
from rebal.cli.main import app
from rebal.domain.formatting import money_text, number_text, quantity_text
from rebal.testkit import write_book_files

runner = CliRunner()
MODELS = "model,symbol,weight\nbal,VTI,60\nbal,BND,40\n"
SCIENTIFIC = re.compile(r"\d[eE][+-]?\d")


def _run(tmp_path: Path, args: list[str], holdings: str, cash: str = "0") -> str:
    files = {
        "models": MODELS,
        "accounts": f"account,model,cash\na1,bal,{cash}\n",
        "holdings": holdings,
        "prices": "symbol,price\nVTI,10\nBND,12.5\n",
    }
    result = runner.invoke(app, [*args, *write_book_files(tmp_path, files)])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_tiny_and_huge_numbers_are_plain_digits_in_json(tmp_path):
    # One micro-share and 3.4e11 shares: a float would print 1e-06 and 3.4e+12.
    holdings = "account,symbol,quantity\na1,VTI,0.000001\na1,BND,340000000000\n"
    text = _run(tmp_path, ["propose", "--policy", "full", "--format", "json"], holdings)
    assert not SCIENTIFIC.search(text), text[:400]
    position = json.loads(text, parse_float=Decimal)["accounts"][0]["positions"][0]
    assert position["quantity"] == Decimal("0.000001")


def test_large_quantities_are_exact_and_agree_across_formats(tmp_path):
    holdings = "account,symbol,quantity\na1,VTI,340000000000.123457\na1,BND,1\n"
    args = ["propose", "--policy", "full", "--min-trade", "0"]
    doc = json.loads(_run(tmp_path, [*args, "--format", "json"], holdings), parse_float=Decimal)
    account = doc["accounts"][0]
    vti = account["positions"][0]
    assert vti["quantity"] == Decimal("340000000000.123457")
    assert vti["value"] == Decimal("3400000000001.23")  # 340000000000.123457 x 10, to the cent
    assert account["value"] == Decimal("3400000000013.73")  # + 1 BND at 12.50

    csv_rows = _run(tmp_path, [*args, "--format", "csv"], holdings).splitlines()[1:]
    csv_trades = [row.split(",")[1:5] for row in csv_rows]
    json_trades = [
        [t["symbol"], t["side"], number_text(t["quantity"]), number_text(t["amount"], 2)]
        for t in account["trades"]
    ]
    assert csv_trades == json_trades
    for row in doc["blotter"]:  # one account: the blotter repeats its orders exactly
        (order,) = (t for t in account["trades"] if t["symbol"] == row["symbol"])
        assert (row["quantity"], row["amount"]) == (order["quantity"], order["amount"])

    table = _run(tmp_path, [*args], holdings)
    for t in account["trades"]:
        assert number_text(t["quantity"], grouped=True) in table
        assert number_text(t["amount"], 2, grouped=True) in table


def test_formatter_writes_plain_digits_with_separators():
    assert number_text(Decimal("2E+1")) == "20"
    assert number_text(Decimal("1E-7")) == "0.0000001"
    assert number_text(Decimal("-0.00"), 2) == "0.00"
    assert money_text(123456789, grouped=True) == "1,234,567.89"
    assert quantity_text(340000000000123457, grouped=True) == "340,000,000,000.123457"
    assert quantity_text(20_000_000) == "20"


@given(st.decimals(allow_nan=False, allow_infinity=False, places=None), st.booleans())
def test_formatter_text_is_the_exact_value_in_plain_digits(value, grouped):
    text = number_text(value, grouped=grouped)
    assert re.fullmatch(r"-?\d{1,3}(,\d{3})*(\.\d+)?" if grouped else r"-?\d+(\.\d+)?", text)
    assert Decimal(text.replace(",", "")) == value
    cents = number_text(value, 2, grouped=grouped)
    assert re.fullmatch(r"-?[\d,]+\.\d\d", cents)
    assert abs(Decimal(cents.replace(",", "")) - value) <= Decimal("0.005")


quantities = st.integers(min_value=1, max_value=10**17).map(lambda m: Decimal(m).scaleb(-6))


@settings(max_examples=15, deadline=None)
@given(
    vti=quantities,
    bnd=quantities,
    cash=st.integers(min_value=0, max_value=10**14).map(lambda c: Decimal(c).scaleb(-2)),
    price=st.decimals(min_value="0.01", max_value="99999.99", places=2),
)
def test_no_output_differs_from_the_exact_value(tmp_path_factory, vti, bnd, cash, price):
    """JSON, CSV and the API carry each order's quantity and amount exactly as the engine's
    integer micro-shares and cents, and each position's value as quantity x price to the cent."""
    tmp_path = tmp_path_factory.mktemp("book")
    holdings = f"account,symbol,quantity\na1,VTI,{vti}\na1,BND,{bnd}\n"
    files = {
        "models": MODELS,
        "accounts": f"account,model,cash\na1,bal,{cash}\n",
        "holdings": holdings,
        "prices": f"symbol,price\nVTI,{price}\nBND,12.5\n",
    }
    args = ["propose", "--policy", "full", "--min-trade", "0", *write_book_files(tmp_path, files)]
    result = api.propose(
        pd.read_csv(tmp_path / "models.csv", dtype=str),
        pd.read_csv(tmp_path / "accounts.csv", dtype=str),
        pd.read_csv(tmp_path / "holdings.csv", dtype=str),
        pd.read_csv(tmp_path / "prices.csv", dtype=str),
        policy="full",
        min_trade=0,
    )
    engine = result.proposal.trades
    flat = sorted(
        (Decimal(int(m)).scaleb(-6), Decimal(int(c)).scaleb(-2))
        for micro, amount, mask in (
            (engine.sell_micro, engine.sell_cents, engine.sell_micro > 0),
            (engine.buy_micro, engine.buy_cents, engine.buy_cents > 0),
        )
        for m, c in zip(micro[mask], amount[mask], strict=True)
    )

    doc = json.loads(runner.invoke(app, [*args, "--format", "json"]).stdout, parse_float=Decimal)
    account = doc["accounts"][0]
    assert sorted((t["quantity"], t["amount"]) for t in account["trades"]) == flat
    csv = runner.invoke(app, [*args, "--format", "csv"]).stdout.splitlines()[1:]
    assert sorted((Decimal(r.split(",")[3]), Decimal(r.split(",")[4])) for r in csv) == flat
    assert sorted(zip(result.trades["quantity"], result.trades["amount"], strict=True)) == flat

    vti_value = (vti * price).quantize(Decimal("0.01"))
    assert account["positions"][0]["value"] == vti_value
    assert result.positions["value"].iloc[0] == vti_value
    assert account["cash"] == cash
