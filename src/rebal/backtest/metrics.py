"""Metrics of a simulation, one value per variant; each is defined in ``docs/backtest.md``.

Returns are time-weighted: the return of observation t is the value after t's trades, costs
and flows, less t's flow, over the value after t-1. Cash flows therefore do not count as
performance, but costs do.
"""

from __future__ import annotations

import numpy as np

from rebal.backtest.engine import Plan, SimResult
from rebal.core.types import FloatArray, IntArray

DAYS_PER_YEAR = 365.25
#: Variants whose return series are worked through together (small enough to stay in cache).
ROWS_PER_PASS = 8
_ALL = slice(None)
#: Metrics that are fractions and are shown as percentages.
PERCENT_COLUMNS = (
    "annual_return",
    "volatility",
    "max_drawdown",
    "avg_abs_drift",
    "max_abs_drift",
    "tracking_error",
    "turnover",
    "rebalancing_benefit",
)


def period_returns(result: SimResult, rows: slice = _ALL) -> FloatArray:
    """Time-weighted return of the variants ``rows`` over every observation after the first."""
    value = result.value[rows]
    end = value[:, 1:].copy()
    end[:, result.flow_times - 1] -= result.flow_done[rows]
    prev = value[:, :-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = np.where(prev > 0, end / prev - 1.0, 0.0)
    return out


def asset_returns(plan: Plan) -> FloatArray:
    """Return of every asset over every observation after the first (T-1, K)."""
    out: FloatArray = plan.prices[1:] / plan.prices[:-1] - 1.0
    return out


def target_returns(plan: Plan, rows: slice = _ALL) -> FloatArray:
    """Returns of the continuously rebalanced target of the variants ``rows`` (V, T-1)."""
    out: FloatArray = plan.target[rows] @ asset_returns(plan).T
    return out


def years_between(dates: np.ndarray) -> float:
    """Length of the history in years of 365.25 days."""
    days = (dates[-1] - dates[0]).astype("timedelta64[D]").astype(np.int64)
    return float(days) / DAYS_PER_YEAR


def drawdown(returns: FloatArray) -> FloatArray:
    """Maximum drawdown of each row's growth path, as a negative fraction (0 if none)."""
    growth = np.cumprod(1.0 + returns, axis=1)
    growth = np.concatenate([np.ones((returns.shape[0], 1)), growth], axis=1)
    peak = np.maximum.accumulate(growth, axis=1)
    out: FloatArray = (growth / peak - 1.0).min(axis=1)
    return out


def compute_metrics(
    result: SimResult,
    plan: Plan,
    dates: np.ndarray,
    baseline: IntArray,
) -> dict[str, FloatArray]:
    """Return every metric per variant; ``baseline`` (V,) is each variant's never-rebalance row.

    The per-observation series are worked through ``ROWS_PER_PASS`` variants at a time, so that
    each pass over them stays in cache.
    """
    years = years_between(dates)
    periods = result.value.shape[1] - 1
    scale = np.sqrt(periods / years)
    asset = asset_returns(plan).T
    parts: dict[str, list[FloatArray]] = {"growth": [], "vol": [], "dd": [], "te": []}
    for start in range(0, result.value.shape[0], ROWS_PER_PASS):
        rows = slice(start, start + ROWS_PER_PASS)
        r = period_returns(result, rows)
        parts["vol"].append(r.std(axis=1, ddof=1) * scale)
        parts["dd"].append(drawdown(r))
        parts["growth"].append(np.prod(1.0 + r, axis=1))
        r -= plan.target[rows] @ asset  # active return against the target
        parts["te"].append(r.std(axis=1, ddof=1) * scale)
    growth = np.concatenate(parts["growth"])
    ann = np.where(growth > 0, growth ** (1.0 / years) - 1.0, -1.0)
    return {
        "annual_return": ann,
        "volatility": np.concatenate(parts["vol"]),
        "max_drawdown": np.concatenate(parts["dd"]),
        "avg_abs_drift": result.drift_sum / periods,
        "max_abs_drift": result.drift_max,
        "tracking_error": np.concatenate(parts["te"]),
        "events": result.events.astype(np.float64),
        "turnover": result.turnover / years,
        "costs": result.costs,
        "realised_gains": result.realised,
        "final_value": result.value[:, -1],
        "rebalancing_benefit": ann - ann[baseline],
    }
