"""Realised gains by calendar year and the estimated tax on them, pinned on a hand-worked case.

Two assets held 50/50 with a 20 % relative band (so a weight outside 40-60 % trades back to
target), 1,000 invested on 2020-01-01 at prices 100 and 100 (5 units each, basis 500 each):

* 2020-02: A 200, B 100. A is 1,000 of 1,500 (66.7 %): sell 250 of A, a quarter of it, realising
  250 - 500/4 = 125. Basis A 375, B 750.
* 2021-01: A 100, B 80. A 375, B 600 (A 38.5 %): sell 112.5 of B (18.75 %), realising
  112.5 - 0.1875 x 750 = -28.125. Basis A 487.5, B 609.375.
* 2022-01: A 200, B 80. A 975, B 487.5 (A 66.7 %): sell 243.75 of A (a quarter), realising
  243.75 - 487.5/4 = 121.875.

At 15 % + 5 % state: 2020 pays 25; 2021 has a net loss and pays nothing, carrying 28.125 forward;
2022 pays 20 % of 121.875 - 28.125 = 93.75, that is 18.75. Taxes over the run: 43.75.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from typer.testing import CliRunner

from rebal.backtest.data import PriceHistory
from rebal.backtest.metrics import yearly_taxes
from rebal.backtest.schedule import ScheduleSpec
from rebal.backtest.sweep import run_lab
from rebal.backtest.variants import Variant
from rebal.cli.main import app
from rebal.core.bands import BandSpec
from rebal.tax.rates import TaxRates

DATES = ["2020-01-01", "2020-02-01", "2021-01-01", "2022-01-01"]
PRICES = [[100.0, 100.0], [200.0, 100.0], [100.0, 80.0], [200.0, 80.0]]
THRESHOLD = Variant("threshold", BandSpec(band_rel=0.20), ScheduleSpec("daily"))
RATES = TaxRates(long_term=Decimal("0.15"), state=Decimal("0.05"))


def hand_worked() -> PriceHistory:
    dates = np.array(DATES, dtype="datetime64[D]")
    return PriceHistory(dates, ("A", "B"), np.array(PRICES), "hand-worked")


def test_realised_gains_and_taxes_by_year_match_the_hand_worked_case() -> None:
    run = run_lab(hand_worked(), [THRESHOLD], np.array([0.5, 0.5]), initial=1_000.0, tax=RATES)
    result = run.result
    assert result.years.tolist() == [2020, 2021, 2022]
    np.testing.assert_allclose(result.realised_by_year[0], [125.0, -28.125, 121.875], rtol=1e-12)
    assert result.events[0] == 3
    taxes = yearly_taxes(result.realised_by_year, float(RATES.long_term_total))
    np.testing.assert_allclose(taxes[0], [25.0, 0.0, 18.75], rtol=1e-12, atol=1e-12)
    assert run.table["realised_gains"][0] == pytest.approx(218.75, rel=1e-12)
    assert run.table["taxes"][0] == pytest.approx(43.75, rel=1e-12)


def test_without_a_rate_there_is_no_taxes_column() -> None:
    run = run_lab(hand_worked(), [THRESHOLD], np.array([0.5, 0.5]), initial=1_000.0)
    assert "taxes" not in run.table


def test_the_total_is_the_sum_over_years_for_every_policy(history: PriceHistory) -> None:
    variants = [
        Variant("never"),
        Variant("calendar", schedule=ScheduleSpec("monthly")),
        Variant("threshold", BandSpec(band_rel=0.05), ScheduleSpec("daily")),
        Variant("rails", BandSpec(band_rel=0.05), ScheduleSpec("daily")),
        Variant("cash-flow"),
    ]
    flows = np.zeros(len(history.dates))
    flows[ScheduleSpec("monthly").mask(history.dates)] = -300.0  # withdrawals realise gains too
    run = run_lab(history, variants, np.array([0.5, 0.3, 0.2]), initial=100_000.0, flows=flows)
    result = run.result
    first, last = (int(str(d)[:4]) for d in history.dates[[0, -1]])
    assert result.years.tolist() == list(range(first, last + 1))
    np.testing.assert_allclose(
        result.realised_by_year.sum(axis=1), result.realised, rtol=1e-12, atol=1e-6
    )
    # Every year saw sales in the rebalancing variants, so the split means something.
    assert (result.realised_by_year[1:4] != 0).all()


@given(
    arrays(np.float64, (3, 6), elements=st.floats(-1e6, 1e6, allow_subnormal=False)),
    st.floats(0.0, 0.9),
)
def test_taxed_gains_are_the_total_less_the_losses_still_carried(
    gains: np.ndarray, rate: float
) -> None:
    # Losses carried forward and never used are the most negative run of final years, if any.
    suffix = np.cumsum(gains[:, ::-1], axis=1)
    unused = np.minimum(suffix.min(axis=1), 0.0)
    taxes = yearly_taxes(gains, rate)
    assert (taxes >= 0).all()
    np.testing.assert_allclose(
        taxes.sum(axis=1), rate * (gains.sum(axis=1) - unused), rtol=1e-9, atol=1e-3
    )


def test_cli_reports_taxes_in_the_table_and_the_output(tmp_path: Path) -> None:
    prices = tmp_path / "prices.csv"
    prices.write_text(
        "date,A,B\n" + "".join(f"{d},{a},{b}\n" for d, (a, b) in zip(DATES, PRICES, strict=True))
    )
    out = tmp_path / "results.csv"
    args = [
        "backtest", "--prices", str(prices), "--band-rel", "20", "--initial", "1000",
        "--tax-rate", "15", "--state-rate", "5", "--out", str(out),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "taxes" in result.output
    row = pd.read_csv(out).iloc[0]
    assert row["realised_gains"] == 218.75
    assert row["taxes"] == 43.75


@pytest.mark.parametrize(
    "args",
    [["--state-rate", "5"], ["--tax-rate", "100"], ["--tax-rate", "nan"], ["--tax-rate", "x"]],
)
def test_bad_tax_rates_are_refused(args: list[str]) -> None:
    result = CliRunner().invoke(app, ["backtest", *args])
    assert result.exit_code == 1
    assert "rate" in result.output
