"""Tolerance bands and inner rails around target weights.

A band says how far a weight may drift before the account is out of tolerance; an inner rail
says where an opportunistic rebalance stops (seed 001, Daryanani 2007). Both come in two kinds:
absolute (target ± a percentage points) and relative (target × (1 ± r)).

Rules, pinned by tests and documented in ``docs/rebalancing.md``:

* Half-width. When both kinds are set for a slot, the *narrower* applies: a position is inside
  tolerance only when it satisfies every band it was given.
* Target of zero. A relative band around a zero target has zero width, so any holding of a
  security the model does not want is out of band; an absolute band tolerates up to its width.
* Edges are clipped to [0, 1]: a weight cannot be negative or exceed the account.
* Defaults. A run gives one kind of band (seed 001: 20 % relative); rails default to half the
  band of the same kind (seed 001: 10 % relative); the wide band of the tiered policy defaults to
  twice the band. A rail (or wide band) the run gives replaces the derived one of *both* kinds:
  ``--band-rel 20 --rail-abs 8`` has absolute rails of 8 points and no relative rail (the
  narrower-kind rule would otherwise let the derived 10 % relative rail override what was asked).
* Per-security overrides (``band_abs`` ... in models.csv) replace the run's bands for that slot
  (both kinds: a security given ``band_abs`` alone is judged by its absolute band only), and its
  rails and wide band derive from its own band unless it sets rails too.

All weights are fractions (0.05 = 5 %). Arrays are (accounts, slots).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rebal.core.kernels import inline_kernel, kernel, maximum, minimum
from rebal.core.types import FloatArray


@dataclass(frozen=True, slots=True, kw_only=True)
class BandSpec:
    """Run-level band settings, as fractions; ``None`` means not set."""

    band_abs: float | None = None
    band_rel: float | None = 0.20
    rail_abs: float | None = None
    rail_rel: float | None = None
    wide_abs: float | None = None
    wide_rel: float | None = None

    def __post_init__(self) -> None:
        if self.band_abs is None and self.band_rel is None:
            raise ValueError("a band needs an absolute or a relative width")
        for name in ("band_abs", "band_rel", "rail_abs", "rail_rel", "wide_abs", "wide_rel"):
            value = getattr(self, name)
            if value is not None and not (0.0 <= value < 10.0):
                raise ValueError(f"{name} must be a non-negative fraction, received {value}")


@dataclass(frozen=True, slots=True)
class BandParams:
    """Per-slot band widths, (accounts, slots) each; NaN where a kind is not set."""

    band_abs: FloatArray
    band_rel: FloatArray
    rail_abs: FloatArray
    rail_rel: FloatArray
    wide_abs: FloatArray
    wide_rel: FloatArray


@dataclass(frozen=True, slots=True)
class Edges:
    """Lower and upper edges, as weights, of the band, the inner rail and the wide band."""

    band_low: FloatArray
    band_high: FloatArray
    rail_low: FloatArray
    rail_high: FloatArray
    wide_low: FloatArray
    wide_high: FloatArray


def _or_nan(value: float | None) -> float:
    return np.nan if value is None else value


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def _given_or_derived(
    spec: BandSpec, name: str, factor: float
) -> tuple[float | None, float | None]:
    """The (absolute, relative) widths of the rail or wide band ``name``: the kinds the run
    gives, else both derived from the band (``factor`` times each of its kinds)."""
    given = getattr(spec, f"{name}_abs"), getattr(spec, f"{name}_rel")
    if given != (None, None):
        return given
    return _scaled(spec.band_abs, factor), _scaled(spec.band_rel, factor)


def run_band_params(spec: BandSpec) -> BandParams:
    """Return the run's widths as 0-d arrays, which broadcast against any (N, K) target.

    Rails and wide bands the run does not give are half and twice the band, kind by kind; one the
    run gives (of either kind, or both) replaces the derived ones of both kinds.
    """
    rail_abs, rail_rel = _given_or_derived(spec, "rail", 0.5)
    wide_abs, wide_rel = _given_or_derived(spec, "wide", 2.0)
    run = {
        "band_abs": spec.band_abs,
        "band_rel": spec.band_rel,
        "rail_abs": rail_abs,
        "rail_rel": rail_rel,
        "wide_abs": wide_abs,
        "wide_rel": wide_rel,
    }
    return BandParams(**{name: np.array(_or_nan(value)) for name, value in run.items()})


def resolve_band_params(
    spec: BandSpec,
    shape: tuple[int, int],
    overrides: BandParams | None = None,
) -> BandParams:
    """Return per-slot widths (arrays of ``shape``): the run's ``spec``, ``overrides`` on top.

    An override row that sets any band kind replaces both band kinds of the run for that slot,
    so a security given ``band_abs`` alone is judged by its absolute band only; its rails and
    wide band derive from its own band unless it sets rails too.
    """
    run = run_band_params(spec)
    out = {f: np.broadcast_to(getattr(run, f), shape).copy() for f in BandParams.__slots__}
    if overrides is not None:
        band_set = ~np.isnan(overrides.band_abs) | ~np.isnan(overrides.band_rel)
        rail_set = ~np.isnan(overrides.rail_abs) | ~np.isnan(overrides.rail_rel)
        for kind in ("abs", "rel"):
            band = getattr(overrides, f"band_{kind}")
            rail = getattr(overrides, f"rail_{kind}")
            out[f"band_{kind}"] = np.where(band_set, band, out[f"band_{kind}"])
            # A security with its own band gets rails and wide band derived from it.
            derived_rail = np.where(band_set, band * 0.5, out[f"rail_{kind}"])
            out[f"rail_{kind}"] = np.where(rail_set, rail, derived_rail)
            out[f"wide_{kind}"] = np.where(band_set, band * 2.0, out[f"wide_{kind}"])
    return BandParams(**out)


@inline_kernel
def at(array: FloatArray, i: int, j: int) -> float:
    """``array[i, j]`` of a (N, K) array or of one broadcast along an axis of length 1."""
    return float(array[i if array.shape[0] > 1 else 0, j if array.shape[1] > 1 else 0])


@inline_kernel
def around(target: float, absolute: float, relative: float) -> tuple[float, float]:
    """Edges of one band: the narrower kind that is set, unbounded where neither is, clipped
    to [0, 1]."""
    scaled = relative * target
    width = scaled if np.isnan(absolute) or absolute > scaled else absolute  # np.fmin
    if np.isnan(width):
        width = np.inf
    return maximum(target - width, 0.0), minimum(target + width, 1.0)


@kernel
def edge_rows(
    start: int,
    stop: int,
    target: FloatArray,
    widths: tuple[FloatArray, ...],
    out: tuple[FloatArray, ...],
) -> None:
    """The six edges of the slots of accounts ``start:stop`` into ``out`` (the fields of
    :class:`Edges`); ``widths`` as the fields of :class:`BandParams`, each (N, K) or broadcast
    along an axis of length 1, as ``target``."""
    band_abs, band_rel, rail_abs, rail_rel, wide_abs, wide_rel = widths
    band_low, band_high, rail_low, rail_high, wide_low, wide_high = out
    for i in range(start, stop):
        for j in range(band_low.shape[1]):
            t = at(target, i, j)
            b_low, b_high = around(t, at(band_abs, i, j), at(band_rel, i, j))
            r_low, r_high = around(t, at(rail_abs, i, j), at(rail_rel, i, j))
            w_low, w_high = around(t, at(wide_abs, i, j), at(wide_rel, i, j))
            band_low[i, j], band_high[i, j] = b_low, b_high
            # A rail never lies outside its band, a wide band never inside it.
            rail_low[i, j], rail_high[i, j] = maximum(r_low, b_low), minimum(r_high, b_high)
            wide_low[i, j], wide_high[i, j] = minimum(w_low, b_low), maximum(w_high, b_high)


def as_2d(array: FloatArray) -> FloatArray:
    """``array`` as a C-contiguous 2-D float array (a 0-d width becomes (1, 1)), as the
    kernels take widths."""
    return np.ascontiguousarray(np.atleast_2d(np.asarray(array, dtype=np.float64)))


def widths(params: BandParams) -> tuple[FloatArray, ...]:
    """The fields of ``params`` as the kernels take them (:func:`as_2d`)."""
    return tuple(as_2d(getattr(params, f)) for f in BandParams.__slots__)


def band_edges(target: FloatArray, params: BandParams) -> Edges:
    """Return the band, rail and wide-band edges around ``target`` (weights, clipped to [0, 1]).

    ``params`` may hold 0-d arrays (one width for every slot, see :func:`run_band_params`).
    """
    given = (getattr(params, f) for f in BandParams.__slots__)
    shape = np.broadcast_shapes(np.shape(target), *(np.shape(w) for w in given))
    target_2d, widths_2d = as_2d(target), widths(params)
    rows, cols = np.broadcast_shapes(target_2d.shape, *(w.shape for w in widths_2d))
    out = tuple(np.empty((rows, cols)) for _ in Edges.__slots__)
    edge_rows(0, rows, target_2d, widths_2d, out)
    return Edges(*(edge.reshape(shape) for edge in out))  # (N, K) as given, or (K,)
