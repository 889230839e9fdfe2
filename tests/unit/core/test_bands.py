"""Band rules users rely on: narrower band wins, zero targets, defaults and overrides."""

from __future__ import annotations

import numpy as np
import pytest

from rebal.core.bands import BandParams, BandSpec, band_edges, resolve_band_params


def _edges(target: list[float], spec: BandSpec, overrides: BandParams | None = None):
    t = np.array([target])
    return band_edges(t, resolve_band_params(spec, t.shape, overrides))


def test_relative_band_of_20_percent_on_a_20_percent_target_is_16_to_24():
    edges = _edges([0.20], BandSpec(band_rel=0.20))
    assert edges.band_low[0, 0] == pytest.approx(0.16)
    assert edges.band_high[0, 0] == pytest.approx(0.24)
    # Rails default to half the band: 18 % to 22 % (seed 001).
    assert edges.rail_low[0, 0] == pytest.approx(0.18)
    assert edges.rail_high[0, 0] == pytest.approx(0.22)


def test_absolute_band_is_target_plus_minus_points():
    edges = _edges([0.60], BandSpec(band_abs=0.05, band_rel=None))
    assert (edges.band_low[0, 0], edges.band_high[0, 0]) == pytest.approx((0.55, 0.65))


def test_when_both_kinds_are_given_the_narrower_band_applies():
    # 5 points absolute vs 25 % relative of 10 % = 2.5 points: relative is narrower.
    edges = _edges([0.10], BandSpec(band_abs=0.05, band_rel=0.25))
    assert (edges.band_low[0, 0], edges.band_high[0, 0]) == pytest.approx((0.075, 0.125))
    # On a 60 % target the absolute band (5 points) is narrower than 25 % (15 points).
    edges = _edges([0.60], BandSpec(band_abs=0.05, band_rel=0.25))
    assert (edges.band_low[0, 0], edges.band_high[0, 0]) == pytest.approx((0.55, 0.65))


def test_zero_target_relative_band_has_no_width_and_absolute_band_tolerates_its_width():
    rel = _edges([0.0], BandSpec(band_rel=0.20))
    assert (rel.band_low[0, 0], rel.band_high[0, 0]) == (0.0, 0.0)
    absolute = _edges([0.0], BandSpec(band_abs=0.02, band_rel=None))
    assert (absolute.band_low[0, 0], absolute.band_high[0, 0]) == pytest.approx((0.0, 0.02))


def test_per_security_band_replaces_the_run_band_for_that_security_only():
    nan = np.nan
    overrides = BandParams(
        band_abs=np.array([[0.03, nan]]),
        band_rel=np.array([[nan, nan]]),
        rail_abs=np.array([[nan, nan]]),
        rail_rel=np.array([[nan, nan]]),
        wide_abs=np.array([[nan, nan]]),
        wide_rel=np.array([[nan, nan]]),
    )
    edges = _edges([0.10, 0.10], BandSpec(band_rel=0.20), overrides)
    assert (edges.band_low[0, 0], edges.band_high[0, 0]) == pytest.approx((0.07, 0.13))
    assert (edges.band_low[0, 1], edges.band_high[0, 1]) == pytest.approx((0.08, 0.12))
    assert (edges.rail_low[0, 0], edges.rail_high[0, 0]) == pytest.approx((0.085, 0.115))


def test_a_band_needs_a_width():
    with pytest.raises(ValueError, match="absolute or a relative"):
        BandSpec(band_abs=None, band_rel=None)


def test_a_rail_the_run_gives_replaces_the_derived_rails_of_both_kinds():
    # --band-rel 20 --rail-abs 8 on a 50 % target: rails 42-58 %, not the derived 45-55 %.
    edges = _edges([0.50], BandSpec(band_rel=0.20, rail_abs=0.08))
    assert (edges.rail_low[0, 0], edges.rail_high[0, 0]) == pytest.approx((0.42, 0.58))
    edges = _edges([0.50], BandSpec(band_abs=0.10, band_rel=None, rail_rel=0.16))
    assert (edges.rail_low[0, 0], edges.rail_high[0, 0]) == pytest.approx((0.42, 0.58))


def test_a_wide_band_the_run_gives_replaces_the_derived_wide_bands_of_both_kinds():
    # --band-rel 20 --wide-band-abs 30 on a 50 % target: wide band 20-80 %, not 30-70 %.
    edges = _edges([0.50], BandSpec(band_rel=0.20, wide_abs=0.30))
    assert (edges.wide_low[0, 0], edges.wide_high[0, 0]) == pytest.approx((0.20, 0.80))


def test_rails_of_both_kinds_given_by_the_run_keep_the_narrower_rule():
    edges = _edges([0.50], BandSpec(band_rel=0.20, rail_abs=0.08, rail_rel=0.10))
    assert (edges.rail_low[0, 0], edges.rail_high[0, 0]) == pytest.approx((0.45, 0.55))


def test_a_security_with_its_own_band_keeps_rails_derived_from_it_whatever_the_run_gives():
    nan = np.nan
    overrides = BandParams(
        band_abs=np.array([[0.04, nan]]),
        band_rel=np.array([[nan, nan]]),
        rail_abs=np.array([[nan, nan]]),
        rail_rel=np.array([[nan, nan]]),
        wide_abs=np.array([[nan, nan]]),
        wide_rel=np.array([[nan, nan]]),
    )
    edges = _edges([0.50, 0.50], BandSpec(band_rel=0.20, rail_abs=0.08), overrides)
    assert (edges.rail_low[0, 0], edges.rail_high[0, 0]) == pytest.approx((0.48, 0.52))
    assert (edges.rail_low[0, 1], edges.rail_high[0, 1]) == pytest.approx((0.42, 0.58))
