"""Trading costs in the lab: charged to the account's cash, in its tax basis.

One rebalance worked by hand: 50/50 of 10,000 at 100 each (50 shares of each), then AAA at 150
(7,500 / 5,000, 60/40 against a 10 % relative band): threshold sells 8.333333 AAA for 1,250.00
(basis 5,000 x 8.333333 / 50 = 833.33333) and buys BBB. Without costs the sale realises
416.67. With 10 bps and 2 per order the sale pays 1.25 + 2 = 3.25, which reduces its proceeds:
413.42; the purchase leaves cash for both fees (1,243.50 of BBB, whose fee is 1.24 + 2 = 3.24,
added to its basis).
"""

from __future__ import annotations

import numpy as np
import pytest

from rebal.backtest.engine import Costs
from rebal.backtest.history import PriceHistory
from rebal.backtest.schedule import ScheduleSpec
from rebal.backtest.sweep import run_lab
from rebal.backtest.variants import Variant
from rebal.core.bands import BandSpec

DATES = np.array(["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07"], dtype="datetime64[D]")
VARIANT = Variant("threshold", BandSpec(band_rel=0.1), ScheduleSpec("daily"))


def _run(prices: list[list[float]], costs: Costs, flows: list[float] | None = None) -> object:
    history = PriceHistory(DATES[: len(prices)], ("AAA", "BBB"), np.array(prices), "hand")
    return run_lab(
        history,
        [VARIANT],
        np.array([0.5, 0.5]),
        initial=10_000.0,
        flows=None if flows is None else np.array(flows),
        costs=costs,
    ).result


def test_a_sale_realises_its_proceeds_less_its_fee() -> None:
    prices = [[100.0, 100.0], [150.0, 100.0], [150.0, 100.0]]
    plain = _run(prices, Costs())
    costly = _run(prices, Costs(bps=10, fixed=2))
    basis = 5_000.0 * 8_333_333 / 50_000_000
    assert plain.realised[0] == pytest.approx(1_250.0 - basis, abs=1e-9)
    assert costly.realised[0] == pytest.approx(1_250.0 - 3.25 - basis, abs=1e-9)
    assert costly.costs[0] == pytest.approx(6.49, abs=1e-12)
    # The fees left the account: its value is the plain one less 6.49 (a cent of rounding
    # remains as cash, BBB bought for 1,243.50 instead of 1,250.00 at the same price).
    assert costly.value[0, 1] == pytest.approx(plain.value[0, 1] - 6.49, abs=0.01)


def test_fees_reduce_the_gains_of_a_liquidation() -> None:
    """Selling everything later (prices unchanged) pays more fees, each in the sale's or the
    purchase's basis: the realised gain falls by more than the first sale's fee."""
    prices = [[100.0, 100.0], [150.0, 100.0], [150.0, 100.0], [150.0, 100.0]]
    # Withdraw everything on the last day: every share is sold at the day's price.
    costly = _run(prices, Costs(bps=10, fixed=2), [0.0, 0.0, 0.0, -1e9])
    plain = _run(prices, Costs(), [0.0, 0.0, 0.0, -1e9])
    assert costly.realised[0] < plain.realised[0] - 3.24


@pytest.mark.parametrize("fixed", [0.0, 2.0])
def test_costs_never_raise_realised_gains(fixed: float) -> None:
    rng = np.random.default_rng(7)
    steps = rng.normal(0.0005, 0.02, (260, 2))
    prices = 100.0 * np.exp(np.cumsum(steps, axis=0))
    dates = np.busday_offset("2020-01-01", np.arange(260), roll="forward").astype("datetime64[D]")
    history = PriceHistory(dates, ("AAA", "BBB"), prices, "random")
    variants = [
        Variant(policy, BandSpec(band_rel=0.1), ScheduleSpec("daily"))
        for policy in ("threshold", "rails", "tiered")
    ] + [Variant("calendar", schedule=ScheduleSpec("monthly"))]

    def realised(costs: Costs) -> np.ndarray:
        run = run_lab(history, variants, np.array([0.6, 0.4]), initial=10_000.0, costs=costs)
        return run.result.realised

    assert (realised(Costs(bps=10, fixed=fixed)) <= realised(Costs()) + 1e-9).all()
