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

By holding period (average cost, the oldest units sold first): the 2020 and 2021 sales are of
units bought 2020-01-01, held one year or less (a sale on 2021-01-01 is still short term), the
2022 sale is of units held over a year. With a 37 % short-term rate, 2020 pays 42 % of 125 =
52.5, 2021 carries a short-term loss of 28.125, which in 2022 offsets the long-term gain:
18.75 again. Taxes: 71.25.
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

from rebal.backtest.history import PriceHistory
from rebal.backtest.metrics import money_text, yearly_taxes
from rebal.backtest.schedule import ScheduleSpec
from rebal.backtest.sweep import run_lab
from rebal.backtest.variants import Variant
from rebal.cli.main import app
from rebal.core.bands import BandSpec
from rebal.tax.rates import TaxRates, net_gains

DATES = ["2020-01-01", "2020-02-01", "2021-01-01", "2022-01-01"]
PRICES = [[100.0, 100.0], [200.0, 100.0], [100.0, 80.0], [200.0, 80.0]]
THRESHOLD = Variant("threshold", BandSpec(band_rel=0.20), ScheduleSpec("daily"))
RATES = TaxRates(short_term=Decimal("0.15"), long_term=Decimal("0.15"), state=Decimal("0.05"))


def hand_worked() -> PriceHistory:
    dates = np.array(DATES, dtype="datetime64[D]")
    return PriceHistory(dates, ("A", "B"), np.array(PRICES), "hand-worked")


def test_realised_gains_and_taxes_by_year_match_the_hand_worked_case() -> None:
    run = run_lab(hand_worked(), [THRESHOLD], np.array([0.5, 0.5]), initial=1_000.0, tax=RATES)
    result = run.result
    assert result.years.tolist() == [2020, 2021, 2022]
    np.testing.assert_allclose(result.realised_by_year[0], [125.0, -28.125, 121.875], rtol=1e-12)
    assert result.events[0] == 3
    np.testing.assert_allclose(result.realised_st_by_year[0], [125.0, -28.125, 0.0], rtol=1e-12)
    np.testing.assert_allclose(result.realised_lt_by_year[0], [0.0, 0.0, 121.875], rtol=1e-12)
    taxes = yearly_taxes(result.realised_st_by_year, result.realised_lt_by_year, RATES)
    np.testing.assert_allclose(taxes[0], [25.0, 0.0, 18.75], rtol=1e-12, atol=1e-12)
    assert run.table["realised_gains"][0] == pytest.approx(218.75, rel=1e-12)
    assert run.table["realised_st"][0] == pytest.approx(96.875, rel=1e-12)
    assert run.table["realised_lt"][0] == pytest.approx(121.875, rel=1e-12)
    assert run.table["taxes"][0] == pytest.approx(43.75, rel=1e-12)


def test_a_higher_short_term_rate_taxes_the_short_term_gains() -> None:
    rates = TaxRates(short_term=Decimal("0.37"), long_term=Decimal("0.15"), state=Decimal("0.05"))
    run = run_lab(hand_worked(), [THRESHOLD], np.array([0.5, 0.5]), initial=1_000.0, tax=rates)
    result = run.result
    taxes = yearly_taxes(result.realised_st_by_year, result.realised_lt_by_year, rates)
    np.testing.assert_allclose(taxes[0], [52.5, 0.0, 18.75], rtol=1e-12, atol=1e-12)
    assert run.table["taxes"][0] == pytest.approx(71.25, rel=1e-12)


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


GAINS = arrays(np.float64, (3, 6), elements=st.floats(-1e6, 1e6, allow_subnormal=False))


def one_rate_taxes(gains: np.ndarray, rate: float) -> np.ndarray:
    """The yearly rule without terms: each year's net gain plus the losses carried, taxed at
    ``rate`` when positive, carried forward when negative."""
    taxes = np.zeros_like(gains)
    carry = np.zeros(gains.shape[0])
    for y in range(gains.shape[1]):
        net = gains[:, y] + carry
        taxes[:, y] = np.maximum(net, 0.0) * rate
        carry = np.minimum(net, 0.0)
    return taxes


@given(GAINS, GAINS, st.integers(0, 90), st.integers(0, 9))
def test_with_equal_rates_the_terms_do_not_matter(
    short: np.ndarray, long: np.ndarray, rate: int, state: int
) -> None:
    rates = TaxRates(Decimal(rate) / 100, Decimal(rate) / 100, Decimal(state) / 100)
    taxes = yearly_taxes(short, long, rates)
    expected = one_rate_taxes(short + long, (rate + state) / 100)
    np.testing.assert_allclose(taxes, expected, rtol=1e-9, atol=1e-3)


@given(GAINS, st.integers(0, 90))
def test_taxed_gains_are_the_total_less_the_losses_still_carried(
    gains: np.ndarray, rate: int
) -> None:
    # Losses carried forward and never used are the most negative run of final years, if any.
    suffix = np.cumsum(gains[:, ::-1], axis=1)
    unused = np.minimum(suffix.min(axis=1), 0.0)
    fraction = Decimal(rate) / 100
    taxes = yearly_taxes(gains, np.zeros_like(gains), TaxRates(fraction, fraction))
    assert (taxes >= 0).all()
    np.testing.assert_allclose(
        taxes.sum(axis=1), rate / 100 * (gains.sum(axis=1) - unused), rtol=1e-9, atol=1e-3
    )


@given(
    arrays(np.float64, (20, 1), elements=st.integers(-(10**6), 10**6).map(float)),
    arrays(np.float64, (20, 1), elements=st.integers(-(10**6), 10**6).map(float)),
)
def test_one_year_is_netted_as_rebal_tax_nets_it(short: np.ndarray, long: np.ndarray) -> None:
    rates = TaxRates(Decimal("0.37"), Decimal("0.20"), Decimal("0.05"))
    taxes = yearly_taxes(short, long, rates)
    for row in range(len(short)):
        st_gain, lt_gain = net_gains(Decimal(short[row, 0]), Decimal(long[row, 0]))
        expected = st_gain * rates.short_term_total + lt_gain * rates.long_term_total
        assert taxes[row, 0] == pytest.approx(float(expected), rel=1e-12, abs=1e-9)


def test_losses_carry_forward_keeping_their_character() -> None:
    # Year 1: a short-term loss of 100 against a long-term gain of 30: 70 short term carried.
    # Year 2: the carried 70 against a 50 short-term gain leaves a 20 short-term loss, which
    #         offsets the 100 long-term gain: 80 taxed long term.
    # Year 3: a long-term loss of 40, carried as long term.
    # Year 4: a 100 short-term gain less the 40 long-term carry: 60 taxed short term.
    short = np.array([[-100.0, 50.0, 0.0, 100.0]])
    long = np.array([[30.0, 100.0, -40.0, 0.0]])
    rates = TaxRates(short_term=Decimal("0.30"), long_term=Decimal("0.10"), state=Decimal("0.05"))
    taxes = yearly_taxes(short, long, rates)
    np.testing.assert_allclose(taxes[0], [0.0, 80 * 0.15, 0.0, 60 * 0.35], rtol=1e-12)


def price_file(tmp_path: Path) -> Path:
    prices = tmp_path / "prices.csv"
    prices.write_text(
        "date,A,B\n" + "".join(f"{d},{a},{b}\n" for d, (a, b) in zip(DATES, PRICES, strict=True))
    )
    return prices


@pytest.mark.parametrize(
    ("options", "short", "long", "taxes"),
    [
        ([], 96.875, 121.875, 43.75),
        (["--short-term-rate", "37"], 96.875, 121.875, 71.25),
        # FIFO sells A's first lot in 2022 too: the same gains as average cost here.
        (["--lots", "fifo", "--short-term-rate", "37"], 96.875, 121.875, 71.25),
        # min-tax: A's two lots gain 100 a unit alike; the long-term one is taxed less (20 %
        # against 42 %), so it goes first, as under FIFO.
        (["--lots", "min-tax", "--short-term-rate", "37"], 96.875, 121.875, 71.25),
        # LIFO sells in 2022 first the 1.125 units of A bought 2021-01-01 at 100, held exactly
        # a year: 112.5 short term; then 0.09375 units of the first lot: 9.375 long term.
        # 2022 pays 42 % of 112.5 - 28.125 carried and 20 % of 9.375.
        (
            ["--lots", "lifo", "--short-term-rate", "37"],
            125 - 28.125 + 112.5,
            9.375,
            52.5 + 84.375 * 0.42 + 9.375 * 0.20,
        ),
    ],
)
def test_cli_reports_taxes_by_lot_method_and_short_term_rate(
    tmp_path: Path, options: list[str], short: float, long: float, taxes: float
) -> None:
    out = tmp_path / "results.csv"
    args = [
        "backtest",
        "--prices",
        str(price_file(tmp_path)),
        "--band-rel",
        "20",
        "--initial",
        "1000",
        "--tax-rate",
        "15",
        "--state-rate",
        "5",
        "--out",
        str(out),
        *options,
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    for header in ("realised gains", "realised ST", "realised LT", "taxes"):
        assert header in result.output
    row = pd.read_csv(out).iloc[0]
    # Every digit, not cents (96.875 and 121.875).
    assert row["realised_gains"] == pytest.approx(short + long, rel=1e-12)
    assert (row["realised_st"], row["realised_lt"]) == pytest.approx((short, long), rel=1e-12)
    assert row["taxes"] == pytest.approx(taxes, rel=1e-12)


@pytest.mark.parametrize(
    "args",
    [
        ["--state-rate", "5"],
        ["--tax-rate", "100"],
        ["--tax-rate", "nan"],
        ["--tax-rate", "x"],
        ["--short-term-rate", "37"],
        ["--tax-rate", "15", "--short-term-rate", "x"],
        ["--tax-rate", "15", "--short-term-rate", "-1"],
        ["--tax-rate", "15", "--short-term-rate", "100"],
    ],
)
def test_bad_tax_rates_are_refused(args: list[str]) -> None:
    result = CliRunner().invoke(app, ["backtest", *args])
    assert result.exit_code == 1
    assert "rate" in result.output


@pytest.mark.parametrize("method", ["specific", "FIFO", "x", ""])
def test_lot_methods_the_lab_does_not_run_are_refused(method: str) -> None:
    result = CliRunner().invoke(app, ["backtest", "--lots", method])
    assert result.exit_code == 1
    assert "--lots" in result.output and "average|fifo|lifo|hifo|min-tax" in result.output


def test_money_is_shown_to_the_cent_and_never_as_minus_zero() -> None:
    # A gain netted to a rounding residue of the float analytics is nothing, not "-0.00".
    assert money_text(-0.0004) == "0.00"
    assert money_text(-1234.567) == "-1,234.57"
    assert money_text(2_712_343.949) == "2,712,343.95"
