"""`rebal backtest` end to end: the shipped series, user files, sweeps, outputs and errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from rebal.cli.main import app

runner = CliRunner()


def test_runs_on_the_shipped_series_with_no_download() -> None:
    result = runner.invoke(
        app, ["backtest", "--start", "1926-01", "--end", "2009-12"], env={"COLUMNS": "400"}
    )
    assert result.exit_code == 0, result.output
    assert "threshold rel 20% daily" in result.output
    assert "benefit vs never" in result.output


def test_sweep_writes_every_variant_and_a_report(tmp_path: Path) -> None:
    out, report = tmp_path / "results.csv", tmp_path / "report.html"
    args = [
        "backtest",
        "--start",
        "1990",
        "--policy",
        "rails",
        "--sweep",
        "band_rel=10:30:10",
        "--sweep",
        "policy=threshold,rails",
        "--flow",
        "500",
        "--cost-bps",
        "10",
        "--out",
        str(out),
        "--report",
        str(report),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert len(table) == 6
    assert table["band_rel"].tolist() == [0.1, 0.1, 0.2, 0.2, 0.3, 0.3]
    assert {"turnover", "tracking_error", "rebalancing_benefit", "costs"} <= set(table.columns)
    assert (table["costs"] > 0).all()
    text = report.read_text()
    assert text.count("<img") == 4 and "Turnover versus tracking error" in text


def test_parquet_output_and_a_user_price_file(tmp_path: Path) -> None:
    prices = tmp_path / "p.csv"
    rows = [f"2021-01-{d:02d},{100 + d},{50 - d / 3:.4f}" for d in range(1, 29)]
    prices.write_text("date,X,Y\n" + "\n".join(rows) + "\n")
    out = tmp_path / "r.parquet"
    args = [
        "backtest",
        "--prices",
        str(prices),
        "--weights",
        "X=70,Y=30",
        "--policy",
        "calendar",
        "--frequency",
        "weekly",
        "--out",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out)
    # 2021-01-01 is a Friday: weekly reviews on Mondays 4, 11, 18 and 25 January.
    assert table["events"].iloc[0] == 4
    assert table["avg_weight_X"].iloc[0] > 0.7


def test_a_bad_price_file_exits_non_zero_naming_file_and_line(tmp_path: Path) -> None:
    prices = tmp_path / "bad.csv"
    prices.write_text("date,X\n2021-01-01,1\n2021-01-01,2\n2021-01-03,-1\n")
    out = tmp_path / "r.csv"
    result = runner.invoke(app, ["backtest", "--prices", str(prices), "--out", str(out)])
    assert result.exit_code == 1
    assert "bad.csv line 3, column date: duplicate date 2021-01-01" in result.output
    assert "bad.csv line 4, column X: non-positive price -1" in result.output
    assert not out.exists()


def test_weights_must_add_up_to_100() -> None:
    result = runner.invoke(app, ["backtest", "--weights", "stocks=60,bonds=30"])
    assert result.exit_code == 1
    assert "add up to 100" in result.output


def test_unknown_sweep_parameter_is_refused() -> None:
    result = runner.invoke(app, ["backtest", "--sweep", "band=1:2:1"])
    assert result.exit_code == 1
    assert "unknown sweep parameter" in result.output


def test_a_missing_grid_file_is_an_input_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["backtest", "--grid", str(tmp_path / "nope.csv")])
    assert result.exit_code == 1
    assert "nope.csv: cannot read" in result.output


def test_a_file_of_periodic_returns_is_compounded_from_the_first_date(tmp_path: Path) -> None:
    returns = tmp_path / "r.csv"
    rows = [f"2021-{m:02d}-28,1%,0.0" for m in range(1, 13)]
    returns.write_text("date,X,Y\n" + "\n".join(rows) + "\n")
    out = tmp_path / "m.csv"
    args = [
        "backtest",
        "--prices",
        str(returns),
        "--returns",
        "--policy",
        "never",
        "--initial",
        "10000",
        "--out",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    # Equal weights; the first row's return is before the purchase: eleven months of 1 % on X.
    final = pd.read_csv(out)["final_value"].iloc[0]
    assert final == pytest.approx(5_000 * 1.01**11 + 5_000, rel=1e-14)  # every digit


def test_a_bad_return_file_names_the_row_and_runs_nothing(tmp_path: Path) -> None:
    returns = tmp_path / "r.csv"
    returns.write_text("date,symbol,return\n2021-01-29,X,0.01\n2021-02-26,X,-100%\n")
    out = tmp_path / "m.csv"
    result = runner.invoke(
        app, ["backtest", "--prices", str(returns), "--returns", "--out", str(out)]
    )
    assert result.exit_code == 1
    assert "the return file has problems" in result.output
    assert "r.csv line 3, column X: return -100% loses everything" in result.output
    assert not out.exists()
    result = runner.invoke(app, ["backtest", "--returns"])
    assert result.exit_code == 1 and "give the file" in result.output
