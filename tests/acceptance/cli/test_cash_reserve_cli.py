"""`--cash-reserve` as a user runs it: `rebal drift` and `rebal propose` measure the same
reserve-adjusted targets, and a bad reserve is refused with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from rebal.cli.main import app
from rebal.testkit import write_book_files

runner = CliRunner()

BOOK = {
    "models": "model,symbol,weight\nm,VTI,60\nm,BND,40\n",
    # at: 54/36 and 10 % cash, what a 10 % reserve asks for; full: fully invested 60/40.
    "accounts": "account,model,cash\nat,m,1000\nfull,m,0\n",
    "holdings": "account,symbol,quantity\nat,VTI,54\nat,BND,36\nfull,VTI,60\nfull,BND,40\n",
    "prices": "symbol,price\nVTI,100\nBND,100\n",
}


def _accounts(tmp_path: Path, command: str, *options: str) -> dict[str, dict]:
    args = [command, *write_book_files(tmp_path, BOOK), *options, "--format", "json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return {a["account"]: a for a in json.loads(result.stdout)["accounts"]}


def test_drift_and_propose_agree_on_the_reserve_adjusted_targets(tmp_path):
    options = ("--cash-reserve", "10", "--band-abs", "5")
    drift = _accounts(tmp_path, "drift", *options)
    proposal = _accounts(tmp_path, "propose", *options)
    for accounts in (drift, proposal):
        assert accounts["at"]["status"] == "inside_tolerance"
        assert [p["target"] for p in accounts["at"]["positions"]] == [54.0, 36.0]
        assert accounts["full"]["status"] == "out_of_tolerance"
        assert "short of the 10.00% cash reserve" in accounts["full"]["reason"]
    assert proposal["at"]["trades"] == []
    assert proposal["full"]["cash_after"] == 1000.0


def test_a_reserve_of_100_percent_is_refused(tmp_path):
    for command in ("drift", "propose"):
        args = [command, *write_book_files(tmp_path, BOOK), "--cash-reserve", "100"]
        result = runner.invoke(app, args)
        assert result.exit_code == 1
        assert "--cash-reserve must be below 100%" in result.output
