"""`--start` and `--end` with a year or a month select every observation dated within it."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rebal.cli.main import app
from rebal.io.price_history import period

runner = CliRunner()


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("2009", date(2009, 1, 1), date(2009, 12, 31)),
        ("2021-12", date(2021, 12, 1), date(2021, 12, 31)),
        ("2024-02", date(2024, 2, 1), date(2024, 2, 29)),
        ("2021-03-15", date(2021, 3, 15), date(2021, 3, 15)),
    ],
)
def test_a_period_runs_from_its_first_day_to_its_last(text: str, first: date, last: date) -> None:
    assert period(text) == (first, last)


def _daily(tmp_path: Path) -> Path:
    days = pd.bdate_range("2021-01-04", "2022-01-31")
    steps = np.arange(len(days))
    frame = pd.DataFrame(
        {"date": days.strftime("%Y-%m-%d"), "X": 100 + steps * 0.1, "Y": 50 + np.sin(steps)}
    )
    path = tmp_path / "daily.csv"
    frame.to_csv(path, index=False)
    return path


def _run(*args: str) -> str:
    result = runner.invoke(
        app, ["backtest", *args, "--policy", "calendar", "--frequency", "monthly"]
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_end_with_a_year_reaches_the_year_s_last_observation_on_the_shipped_series() -> None:
    """1926–2009 annual rebalancing: 8.48 % a year over the whole of 2009, not 8.38 %
    when December 2009's eleven months are dropped."""
    result = runner.invoke(
        app,
        [
            "backtest",
            "--start",
            "1926",
            "--end",
            "2009",
            "--policy",
            "calendar",
            "--frequency",
            "annual",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "1926-01-01 to 2009-12-01" in result.output
    assert "8.48%" in result.output


def test_end_with_a_month_keeps_the_month_s_trading_days(tmp_path: Path) -> None:
    prices = str(_daily(tmp_path))
    out = _run(
        "--prices", prices, "--weights", "X=60,Y=40", "--start", "2021-01", "--end", "2021-12"
    )
    assert "2021-01-04 to 2021-12-31" in out


def test_start_and_end_in_the_same_month_select_that_month(tmp_path: Path) -> None:
    prices = str(_daily(tmp_path))
    out = _run(
        "--prices", prices, "--weights", "X=60,Y=40", "--start", "2021-03", "--end", "2021-03"
    )
    assert "2021-03-01 to 2021-03-31" in out


def test_a_period_with_fewer_than_two_observations_is_refused(tmp_path: Path) -> None:
    prices = str(_daily(tmp_path))
    last = date(2022, 1, 31) + timedelta(days=400)
    result = runner.invoke(
        app, ["backtest", "--prices", prices, "--weights", "X=60,Y=40", "--start", str(last.year)]
    )
    assert result.exit_code == 1
    assert "fewer than two observations" in result.output
