"""Sweep specifications: ``--sweep`` specs and grid files, and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from rebal.backtest.schedule import ScheduleSpec
from rebal.backtest.variants import Variant
from rebal.core.bands import BandSpec
from rebal.errors import InputError
from rebal.io.sweep_grid import expand_grid, read_grid

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


def test_sweep_values_are_numbers_as_in_every_file() -> None:
    assert [v.bands.band_rel for v in expand_grid(BASE, ["band_rel=1e1,2.5E1"])] == [0.1, 0.25]
    with pytest.raises(ValueError, match="band_rel: '1_0' is not a number"):
        expand_grid(BASE, ["band_rel=1_0"])
