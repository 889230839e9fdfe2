"""Tax lots in the lab: which lots a sale relieves, and whether each part is short or long term.

Hand-worked case (two assets held 50/50, rebalanced to target at every observation, 1,000
invested on 2020-01-01 at 100 and 100: lot A0 of 5 units at 100, lot B0 of 5 units at 100):

* 2020-03-01, A 200, B 400: A 1,000, B 2,000. Buy 500 of A (lot A1: 2.5 units at 200); sell
  1.25 units of B0 at 400: a short-term gain of 375.
* 2021-02-01, A 100, B 400: A 750, B 1,500. Buy 375 of A (lot A2: 3.75 units at 100); sell
  0.9375 units of B0 at 400, held more than a year: a long-term gain of 281.25.
* 2021-06-01, A 300, B 400: A 3,375 (11.25 units), B 1,125. Sell 3.75 units of A at 300:
  - fifo takes A0 (held over a year): 3.75 x 200 = 750 long term;
  - lifo takes A2 (bought four months ago): 3.75 x 200 = 750 short term;
  - hifo takes A1 (cost 200, held over a year) then 1.25 units of A0, the older of the two
    lots at 100: 2.5 x 100 + 1.25 x 200 = 500 long term;
  - min-tax takes the long-term lots first, the smaller gain first: A1, then A0, as hifo;
  - average sells a third of the position at its average basis, 1,375 / 3 (a gain of
    1,125 - 458.33 = 666.67), the units sold being A0's oldest: long term.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebal.backtest.engine import (
    LAB_LOT_METHODS,
    LOT_NOISE,
    NO_RATES,
    Costs,
    _open_lot,
    _relieve,
    long_term_from,
    simulate,
)
from rebal.backtest.history import PriceHistory
from rebal.backtest.schedule import ScheduleSpec
from rebal.backtest.sweep import run_lab
from rebal.backtest.variants import Variant, build_plan
from rebal.tax.lots import LotMethod, TaxLot, first_long_term_day, relieve_lots
from rebal.tax.rates import TaxRates

DATES = ["2020-01-01", "2020-03-01", "2021-02-01", "2021-06-01"]
PRICES = [[100.0, 100.0], [200.0, 400.0], [100.0, 400.0], [300.0, 400.0]]
ALWAYS = Variant("calendar", schedule=ScheduleSpec("daily"))
#: Short- and long-term gains of 2020 and 2021 under each method (module docstring).
EXPECTED = {
    "fifo": ([375.0, 0.0], [0.0, 281.25 + 750.0]),
    "lifo": ([375.0, 750.0], [0.0, 281.25]),
    "hifo": ([375.0, 0.0], [0.0, 281.25 + 500.0]),
    "min-tax": ([375.0, 0.0], [0.0, 281.25 + 500.0]),
    "average": ([375.0, 0.0], [0.0, 281.25 + 1125.0 - 1375.0 / 3]),
}


def history(dates: list[str], prices: list[list[float]]) -> PriceHistory:
    return PriceHistory(np.array(dates, dtype="datetime64[D]"), ("A", "B"), np.array(prices), "t")


@pytest.mark.parametrize("method", sorted(EXPECTED))
def test_each_method_relieves_the_hand_worked_lots(method: str) -> None:
    run = run_lab(
        history(DATES, PRICES),
        [ALWAYS],
        np.array([0.5, 0.5]),
        initial=1_000.0,
        lots=LotMethod(method),
    )
    result = run.result
    short, long = EXPECTED[method]
    assert result.years.tolist() == [2020, 2021]
    np.testing.assert_allclose(result.realised_st_by_year[0], short, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(result.realised_lt_by_year[0], long, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(
        result.realised_by_year[0], np.add(short, long), rtol=1e-12, atol=1e-9
    )
    row = run.table.iloc[0]
    assert row["realised_st"] == pytest.approx(sum(short), rel=1e-12)
    assert row["realised_lt"] == pytest.approx(sum(long), rel=1e-12)
    assert row["realised_gains"] == pytest.approx(sum(short) + sum(long), rel=1e-12)


def test_taxes_follow_the_term_of_each_lot() -> None:
    rates = TaxRates(short_term=Decimal("0.30"), long_term=Decimal("0.15"))
    taxes = {
        method: run_lab(
            history(DATES, PRICES),
            [ALWAYS],
            np.array([0.5, 0.5]),
            initial=1_000.0,
            tax=rates,
            lots=LotMethod(method),
        ).table["taxes"][0]
        for method in ("fifo", "lifo", "hifo")
    }
    # 375 short term in 2020 for all; then 2021's long- and short-term gains.
    assert taxes["fifo"] == pytest.approx(112.5 + 1031.25 * 0.15, rel=1e-12)
    assert taxes["lifo"] == pytest.approx(112.5 + 281.25 * 0.15 + 750 * 0.30, rel=1e-12)
    assert taxes["hifo"] == pytest.approx(112.5 + 781.25 * 0.15, rel=1e-12)


@pytest.mark.parametrize(("sold", "short"), [("2021-06-19", True), ("2021-06-20", False)])
def test_a_lot_is_long_term_only_when_held_more_than_a_year(sold: str, short: bool) -> None:
    # Bought 2020-06-19 (observation 0); everything withdrawn on the sale date.
    h = history(["2020-06-19", sold], [[10.0, 10.0], [12.0, 11.0]])
    flows = np.array([0.0, -1e12])
    for method in LAB_LOT_METHODS:
        plan = build_plan(
            h,
            [Variant("never")],
            np.array([[0.5, 0.5]]),
            initial=1_000.0,
            flows=flows,
            costs=Costs(),
            lots=method,
        )
        result = simulate(plan)
        gain = 600.0 + 550.0 - 1_000.0
        assert result.realised[0] == pytest.approx(gain, rel=1e-12)
        assert result.realised_st_by_year[0].sum() == pytest.approx(gain if short else 0.0)
        assert result.realised_lt_by_year[0].sum() == pytest.approx(0.0 if short else gain)


def test_long_term_from_applies_first_long_term_day_to_the_observations() -> None:
    dates = np.array(
        ["2020-02-28", "2020-02-29", "2021-02-28", "2021-03-01", "2021-03-02", "2022-03-02"],
        dtype="datetime64[D]",
    )
    expected = [
        int(np.searchsorted(dates, np.datetime64(first_long_term_day(d), "D")))
        for d in dates.tolist()
    ]
    # Bought 2020-02-28: the holding period starts on the 29th, so the lot is long term on
    # 2021-03-01 (observation 3); bought 2021-02-28 or 2021-03-01, on 2022-03-02 (5).
    assert long_term_from(dates).tolist() == expected == [3, 3, 5, 5, 6, 6]


# Operations on one slot: a buy (units / 100) or a sale of a fraction of the units held (1:
# all of them), at distinct whole prices (so no two lots tie on cost, even after rebal.tax
# rounds a partial lot's basis to the cent).
operations = st.lists(
    st.tuples(st.booleans(), st.one_of(st.floats(0.05, 0.95), st.just(1.0))),
    min_size=2,
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(
    method=st.sampled_from(list(LAB_LOT_METHODS)),
    rated=st.booleans(),
    ops=operations,
    prices=st.lists(st.integers(5, 500), min_size=25, max_size=25, unique=True),
    gaps=st.lists(st.integers(1, 200), min_size=25, max_size=25),
)
def test_relief_equals_rebal_tax(
    method: LotMethod,
    rated: bool,
    ops: list[tuple[bool, float]],
    prices: list[int],
    gaps: list[int],
) -> None:
    """The compiled relief gives rebal.tax's basis and short-/long-term gains, sale by sale
    (min-tax with and without rates)."""
    rates = TaxRates(short_term=Decimal("0.37"), long_term=Decimal("0.2")) if rated else None
    lot_rates = (0.37, 0.2) if rated else NO_RATES
    days = np.datetime64("2020-01-01", "D") + np.cumsum([0, *gaps[: len(ops) - 1]])
    long_from = long_term_from(days)
    cap = len(ops)
    lot_units, lot_cost = np.zeros((1, cap)), np.zeros((1, cap))
    lot_time = np.zeros((1, cap), dtype=np.int64)
    span = np.zeros((1, 2), dtype=np.int64)
    lots: list[TaxLot] = []
    units, basis = 0.0, 0.0
    code = LAB_LOT_METHODS.index(method)
    for t, (buy, amount) in enumerate(ops):
        when, price = days[t].item(), float(prices[t])
        if buy or units == 0:
            quantity = round(amount * 100, 6)  # micro-units, exact in Decimal as in floats
            _open_lot(0, t, quantity, quantity * price, lot_units, lot_cost, lot_time, span)
            exact = Decimal(str(quantity))
            lots.append(TaxLot(f"L{t}", exact, exact * prices[t], when))
            units += quantity
            basis += quantity * price
            continue
        everything = amount == 1.0
        sold = units if everything else round(units * amount, 6)
        relieved, short, long = _relieve(
            code,
            lot_rates,
            0,
            t,
            sold,
            everything,
            price,
            basis / units,
            long_from,
            lot_units,
            lot_cost,
            lot_time,
            span,
        )
        held = sum(lot.quantity for lot in lots)
        quantity = held if everything else Decimal(str(sold))
        relief = relieve_lots(lots, quantity, method, Decimal(price), when, rates=rates)
        pieces = len(relief.sales)
        tolerance = 1e-6 * max(abs(float(relief.basis)), 1.0) + 0.01 * pieces
        assert relieved == pytest.approx(float(relief.basis), abs=tolerance)
        assert short == pytest.approx(float(relief.realised_st), abs=tolerance)
        assert long == pytest.approx(float(relief.realised_lt), abs=tolerance)
        lots = list(relief.remaining)
        units -= sold
        basis -= relieved
        if everything or units <= LOT_NOISE * sold:
            assert span[0, 0] == span[0, 1]  # no lot left
            units, basis = 0.0, 0.0
        left = lot_units[0, span[0, 0] : span[0, 1]].sum()
        assert left == pytest.approx(units, rel=1e-9, abs=1e-9)
