"""A sweep of variants equals its variants run alone."""

from __future__ import annotations

import numpy as np

from rebal.backtest.history import PriceHistory
from rebal.backtest.schedule import ScheduleSpec
from rebal.backtest.sweep import run_lab
from rebal.backtest.variants import Variant
from rebal.core.bands import BandSpec
from rebal.io.sweep_grid import expand_grid

BASE = Variant("threshold", BandSpec(band_rel=0.2), ScheduleSpec("daily"))


def test_a_sweep_row_equals_the_same_variant_run_alone(history: PriceHistory) -> None:
    weights = np.array([0.4, 0.4, 0.2])
    grid = expand_grid(BASE, ["policy=threshold,rails,tiered", "band_rel=4:12:4"])
    together = run_lab(history, grid, weights, initial=1_000.0)
    for i in (0, 4, 8):
        alone = run_lab(history, [grid[i]], weights, initial=1_000.0)
        np.testing.assert_allclose(together.result.value[i], alone.result.value[0], rtol=1e-12)
        assert together.table["events"].iloc[i] == alone.table["events"].iloc[0]
    assert len(together.table) == 9  # the never baseline is run but not listed
