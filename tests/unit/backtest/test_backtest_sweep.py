"""Grids of variants: specs, grid files, and that a sweep equals its variants run alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rebal.backtest.data import PriceHistory
from rebal.backtest.schedule import ScheduleSpec
from rebal.backtest.sweep import expand_grid, read_grid, run_lab
from rebal.backtest.variants import Variant
from rebal.core.bands import BandSpec
from rebal.errors import InputError

BASE = Variant("threshold", BandSpec(band_rel=0.2), ScheduleSpec("daily"))


def test_ranges_include_their_stop_and_bands_are_percent() -> None:
    grid = expand_grid(BASE, ["band_rel=5:30:5"])
    assert [v.bands.band_rel for v in grid] == pytest.approx([0.05, 0.10, 0.15, 0.20, 0.25, 0.30])


def test_axes_multiply_and_one_band_kind_replaces_the_other() -> None:
    grid = expand_grid(BASE, ["policy=threshold,rails", "band_abs=2,5", "frequency=weekly"])
    assert len(grid) == 4
    assert {(v.policy, v.bands.band_abs, v.bands.band_rel) for v in grid} == {
        ("threshold", 0.02, None),
        ("threshold", 0.05, None),
        ("rails", 0.02, None),
        ("rails", 0.05, None),
    }
    assert all(v.schedule.frequency == "weekly" for v in grid)


def test_grid_file_rows_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "grid.csv"
    good.write_text("policy,band_rel,look\nrails,10,5\nthreshold,,\n")
    variants = read_grid(good, BASE)
    assert variants[0] == Variant("rails", BandSpec(band_rel=0.1), ScheduleSpec(look=5))
    assert variants[1] == BASE  # empty cells keep the base
    bad = tmp_path / "bad.csv"
    bad.write_text("policy,band_rel\nrails,10\nsideways,10\nrails,abc\n")
    with pytest.raises(InputError) as caught:
        read_grid(bad, BASE)
    text = str(caught.value)
    assert "bad.csv line 3: unknown policy 'sideways'" in text
    assert "bad.csv line 4" in text


def test_a_sweep_row_equals_the_same_variant_run_alone(history: PriceHistory) -> None:
    weights = np.array([0.4, 0.4, 0.2])
    grid = expand_grid(BASE, ["policy=threshold,rails,tiered", "band_rel=4:12:4"])
    together = run_lab(history, grid, weights, initial=1_000.0)
    for i in (0, 4, 8):
        alone = run_lab(history, [grid[i]], weights, initial=1_000.0)
        np.testing.assert_allclose(together.result.value[i], alone.result.value[0], rtol=1e-12)
        assert together.table["events"].iloc[i] == alone.table["events"].iloc[0]
    assert len(together.table) == 9  # the never baseline is run but not listed
