"""A sweep of variants equals its variants run alone, and the same in one thread or several."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rebal.adapters.executors.threads import ThreadExecutor
from rebal.adapters.memory.executor import SerialExecutor
from rebal.backtest import engine
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


def test_a_sweep_in_parallel_batches_equals_it_in_one_thread(
    history: PriceHistory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batches of 2 variants, every run large enough for the pool: each thread writes its rows only.
    monkeypatch.setattr(engine, "BATCH", 2)
    monkeypatch.setattr(engine, "PARALLEL_CELLS", 0)
    weights = np.array([0.4, 0.4, 0.2])
    grid = expand_grid(BASE, ["policy=threshold,rails,tiered", "band_rel=4:12:4"])
    serial = run_lab(history, grid, weights, initial=1_000.0, executor=SerialExecutor())
    threads = run_lab(history, grid, weights, initial=1_000.0, executor=ThreadExecutor(workers=2))
    np.testing.assert_array_equal(threads.result.value, serial.result.value)
    pd.testing.assert_frame_equal(threads.table, serial.table, check_exact=True)
