"""What `rebal backtest` writes: the table on the terminal, `--out`, `--trades`, the docs' sweep."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rebal.backtest.metrics import money_text
from rebal.backtest.schedule import ScheduleSpec
from rebal.backtest.sweep import run_lab
from rebal.backtest.variants import Variant
from rebal.cli.main import app
from rebal.core.bands import BandSpec
from rebal.io.price_history import load_shipped

runner = CliRunner()
DOCS = Path(__file__).resolve().parents[3] / "docs" / "backtest.md"
# Feb 29: A doubles (2/3 of the portfolio); Mar 31: nothing moves.
PRICES = "date,A,B\n2020-01-31,10,10\n2020-02-29,20,10\n2020-03-31,20,10\n"


def _invoke(*args: str, env: dict[str, str] | None = None) -> str:
    result = runner.invoke(app, ["backtest", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("width", [80, 120])
def test_the_table_fits_the_terminal_and_shows_the_final_value(width: int) -> None:
    output = _invoke("--tax-rate", "15", env={"COLUMNS": str(width)})
    assert max(len(line) for line in output.splitlines()) <= width
    assert "final value" in output
    shipped = load_shipped()
    variant = Variant("threshold", BandSpec(band_rel=0.20), ScheduleSpec("daily"))
    run = run_lab(shipped, [variant], np.array([0.6, 0.4]), initial=10_000.0)
    assert money_text(float(run.table["final_value"][0])) in output
    if width == 80:
        assert "Not shown at this width: realised ST" in output


def test_a_wide_terminal_shows_every_column() -> None:
    output = _invoke("--tax-rate", "15", env={"COLUMNS": "250"})
    assert "Not shown" not in output
    for header in ("volatility", "turnover/yr", "realised gains", "taxes", "TE"):
        assert header in output


def test_out_keeps_every_digit(tmp_path: Path) -> None:
    out = tmp_path / "results.csv"
    _invoke("--policy", "calendar", "--frequency", "annual", "--out", str(out))
    written = pd.read_csv(out)
    variant = Variant("calendar", BandSpec(band_rel=0.20), ScheduleSpec("annual"))
    run = run_lab(load_shipped(), [variant], np.array([0.6, 0.4]), initial=10_000.0)
    for column in ("final_value", "annual_return", "volatility", "turnover", "avg_weight_STOCKS"):
        assert written[column][0] == run.table[column][0], column


def _prices(tmp_path: Path) -> Path:
    path = tmp_path / "prices.csv"
    path.write_text(PRICES)
    return path


def test_trades_csv_lists_every_rebalance_with_its_date_weights_and_amounts(
    tmp_path: Path,
) -> None:
    trades = tmp_path / "trades.csv"
    args = ["--prices", str(_prices(tmp_path)), "--weights", "A=50,B=50", "--initial", "1000"]
    output = _invoke(
        *args, "--policy", "calendar", "--frequency", "monthly", "--trades", str(trades)
    )
    assert "1 rebalance)" in output
    header = "variant,date,value_before,value_after,symbol,weight_before,weight_after,amount"
    assert trades.read_text().splitlines()[0] == header
    table = pd.read_csv(trades)
    # 50 A at 20 and 50 B at 10 on Feb 29: 1,500, two thirds in A; back to 750 each.
    feb = table[table["date"] == "2020-02-29"].set_index("symbol")
    assert feb["value_before"].tolist() == [1500.0, 1500.0]
    assert feb.loc["A", "weight_before"] == pytest.approx(2 / 3, abs=1e-15)
    assert feb.loc["A", "amount"] == pytest.approx(-250.0, abs=1e-9)
    assert feb.loc["B", "amount"] == pytest.approx(250.0, abs=1e-9)
    assert feb["weight_after"].tolist() == pytest.approx([0.5, 0.5], abs=1e-15)
    # Mar 31: the calendar review finds the account at target and places no order, which is
    # not a rebalance (as in ``rebal propose``: no orders, nothing traded).
    assert table[table["date"] == "2020-03-31"].empty
    assert set(table["variant"]) == {"calendar monthly"}


def test_trades_json_has_one_object_per_rebalance_for_every_variant(tmp_path: Path) -> None:
    trades = tmp_path / "trades.json"
    args = ["--prices", str(_prices(tmp_path)), "--weights", "A=50,B=50", "--initial", "1000"]
    _invoke(
        *args,
        "--policy",
        "calendar",
        "--sweep",
        "frequency=monthly,quarterly",
        "--trades",
        str(trades),
    )
    events = json.loads(trades.read_text())
    by_variant: dict[str, list[str]] = {e["variant"]: [] for e in events}
    for e in events:
        by_variant[e["variant"]].append(e["date"])
    # Monthly reviews Feb (a trade) and Mar (at target: no orders, no rebalance); quarterly the
    # first observation of Q1 is the purchase.
    assert by_variant == {"calendar monthly": ["2020-02-29"]}
    feb = events[0]
    assert feb["value_before"] == feb["value_after"] == 1500.0
    assert feb["assets"]["A"]["amount"] == pytest.approx(-250.0, abs=1e-9)


def test_trades_must_be_csv_or_json(tmp_path: Path) -> None:
    result = runner.invoke(app, ["backtest", "--trades", str(tmp_path / "t.txt")])
    assert result.exit_code == 1
    assert "--trades must end in .csv or .json" in result.output
    assert not (tmp_path / "t.txt").exists()


def test_the_docs_sweep_example_gives_distinct_rows(tmp_path: Path) -> None:
    text = DOCS.read_text()
    block = re.search(r"# a grid of .*?\n(rebal backtest .*?)\n\n", text, re.S)
    assert block is not None
    command = shlex.split(block.group(1).replace("\\\n", " "))[2:]
    out = tmp_path / "results.csv"
    while "--out" in command or "--report" in command:
        i = command.index("--out") if "--out" in command else command.index("--report")
        del command[i : i + 2]
    _invoke(*command, "--out", str(out))
    table = pd.read_csv(out)
    metrics = table[["annual_return", "events", "turnover", "avg_abs_drift"]].round(12)
    assert len(table) > 1
    assert not metrics.duplicated().any(), table.loc[metrics.duplicated(keep=False), "variant"]
