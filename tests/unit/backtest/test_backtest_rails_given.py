"""Rails and wide bands the user gives are the ones the lab trades on and its table shows."""

from __future__ import annotations

import numpy as np
import pytest

from rebal.backtest.history import PriceHistory
from rebal.backtest.schedule import ScheduleSpec
from rebal.backtest.sweep import run_lab
from rebal.backtest.variants import Variant
from rebal.core.bands import BandSpec

WEIGHTS = np.array([0.4, 0.4, 0.2])
DAILY = ScheduleSpec("daily")


def _run(history: PriceHistory, *variants: Variant):
    return run_lab(history, list(variants), WEIGHTS, initial=10_000.0)


def _jump() -> PriceHistory:
    """A doubles on the third observation: 40/40/20 becomes 57/29/14."""
    dates = np.busday_offset("2024-01-01", np.arange(5), roll="forward").astype("datetime64[D]")
    prices = np.array([[50.0, 50, 50], [50, 50, 50], [100, 50, 50], [100, 50, 50], [100, 50, 50]])
    return PriceHistory(dates, ("A", "B", "C"), prices, "a jump")


@pytest.mark.parametrize(
    ("policy", "given", "weight_a"),
    [
        # The rails asked for, 32-48 %, not the derived 36-44 %: A is sold to 48 %.
        ("rails", BandSpec(band_rel=0.2, rail_abs=0.08), 0.48),
        # 57 % is inside the wide band asked for (10-70 %), not the derived one (24-56 %):
        # tiered trades to the rails (44 %), not to target.
        ("tiered", BandSpec(band_rel=0.2, wide_abs=0.30), 0.44),
    ],
    ids=["rail-abs", "wide-band-abs"],
)
def test_a_rail_or_wide_band_of_the_other_kind_is_what_the_lab_trades_to(policy, given, weight_a):
    history = _jump()
    run = run_lab(
        history, [Variant(policy, given, DAILY)], WEIGHTS, initial=10_000.0, record_weights=True
    )
    assert run.result.traded[0, 2]
    assert run.result.weights is not None
    # Weights are recorded before trading: those of the next observation (same prices).
    assert run.result.weights[0, 3, 0] == pytest.approx(weight_a)


def test_the_table_shows_the_widths_each_variant_trades_on(history):
    run = _run(
        history,
        Variant("rails", BandSpec(band_rel=0.2), DAILY),
        Variant("rails", BandSpec(band_rel=0.2, rail_abs=0.08), DAILY),
        Variant("tiered", BandSpec(band_abs=0.05, band_rel=None, wide_rel=0.3), DAILY),
        Variant("threshold", BandSpec(band_rel=0.2), DAILY),
    )
    table = run.table.set_index("variant")
    columns = ["band_abs", "band_rel", "rail_abs", "rail_rel", "wide_abs", "wide_rel"]
    nan = np.nan
    expected = {
        "rails rel 20% daily": [nan, 0.2, nan, 0.1, nan, nan],
        "rails rel 20% rail abs 8% daily": [nan, 0.2, 0.08, nan, nan, nan],
        "tiered abs 5% wide rel 30% daily": [0.05, nan, 0.025, nan, nan, 0.3],
        "threshold rel 20% daily": [nan, 0.2, nan, nan, nan, nan],
    }
    assert list(table.index) == list(expected)
    for label, widths in expected.items():
        np.testing.assert_allclose(table.loc[label, columns].to_numpy(float), widths)
