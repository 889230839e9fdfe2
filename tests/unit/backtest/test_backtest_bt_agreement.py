"""The lab agrees with bt (pmorissette/bt) on calendar and threshold rebalancing.

Same rebalance dates and final values within 1e-7 relative, with bt on fractional positions and
no costs: the lab's orders are the live engine's (micro-shares, cents, no trade under the
minimum), bt's exact fractions, which moves a final value of about a million by cents. bt
rebalances on its first date (the initial allocation, our observation 0) and then on the dates
its algos fire.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rebal.backtest.history import PriceHistory
from rebal.backtest.schedule import ScheduleSpec
from rebal.backtest.sweep import run_lab
from rebal.backtest.variants import Variant
from rebal.core.bands import BandSpec

bt = pytest.importorskip("bt", reason="bt is a dev dependency")
# ffn (bt's statistics) trips a pandas deprecation warning that is not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")

WEIGHTS = np.array([0.5, 0.3, 0.2])
CAPITAL = 1_000_000.0


def _bt_run(history: PriceHistory, trigger: object) -> tuple[float, list[np.datetime64]]:
    index = pd.DatetimeIndex(history.dates)
    data = pd.DataFrame(history.prices, index=index, columns=history.symbols)
    weights = dict(zip(history.symbols, WEIGHTS, strict=True))
    algos = [bt.algos.WeighSpecified(**weights), trigger, bt.algos.Rebalance()]
    backtest = bt.Backtest(
        bt.Strategy("s", algos), data, integer_positions=False, initial_capital=CAPITAL
    )
    result = bt.run(backtest)
    dates = result.get_transactions().index.get_level_values(0).unique()
    return float(backtest.strategy.values.iloc[-1]), list(dates.values.astype("datetime64[D]"))


def _ours(history: PriceHistory, variant: Variant) -> tuple[float, list[np.datetime64]]:
    run = run_lab(history, [variant], WEIGHTS, initial=CAPITAL)
    dates = [history.dates[0], *history.dates[run.result.event_dates(0)]]
    return float(run.result.value[0, -1]), dates


@pytest.mark.parametrize(
    ("trigger", "variant"),
    [
        (lambda: bt.algos.RunMonthly(), Variant("calendar", schedule=ScheduleSpec("monthly"))),
        (lambda: bt.algos.RunQuarterly(), Variant("calendar", schedule=ScheduleSpec("quarterly"))),
        (
            lambda: bt.algos.Or([bt.algos.RunOnce(), bt.algos.RunIfOutOfBounds(0.05)]),
            Variant("threshold", BandSpec(band_rel=0.05), ScheduleSpec("daily")),
        ),
        (
            lambda: bt.algos.Or([bt.algos.RunOnce(), bt.algos.RunIfOutOfBounds(0.15)]),
            Variant("threshold", BandSpec(band_rel=0.15), ScheduleSpec("daily")),
        ),
    ],
    ids=["monthly", "quarterly", "threshold-5%", "threshold-15%"],
)
def test_same_dates_and_final_value_as_bt(
    history: PriceHistory, trigger: object, variant: Variant
) -> None:
    theirs_value, theirs_dates = _bt_run(history, trigger())  # type: ignore[operator]
    ours_value, ours_dates = _ours(history, variant)
    assert len(ours_dates) > 3
    assert ours_dates == theirs_dates
    assert ours_value == pytest.approx(theirs_value, rel=1e-7)
