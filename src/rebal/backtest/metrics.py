"""Metrics of a simulation, one value per variant; each is defined in ``docs/backtest.md``.

Returns are time-weighted: the return of observation t is the value after t's trades, costs
and flows, less t's flow, over the value after t-1. Cash flows therefore do not count as
performance, but costs do.

Taxes are estimated, not paid: each calendar year's net realised gain, less the losses carried
forward from earlier years, is taxed at one capital-gains rate (see :func:`yearly_taxes`).
"""

from __future__ import annotations

import numpy as np

from rebal.backtest.engine import Plan, SimResult
from rebal.core.types import FloatArray, IntArray
from rebal.tax.rates import TaxRates

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


def yearly_taxes(realised_by_year: FloatArray, rate: float) -> FloatArray:
    """Estimated tax (V, Y) on realised gains by calendar year (V, Y), at ``rate``.

    Each year's net realised gain is first reduced by the losses carried forward from earlier
    years; a positive remainder is taxed at ``rate`` and uses the carry up, a negative one
    is carried forward in full to later years (no refund, and no offset against other income).
    """
    taxes = np.zeros_like(realised_by_year)
    carry = np.zeros(realised_by_year.shape[0])  # losses not yet used, <= 0
    for y in range(realised_by_year.shape[1]):
        net = realised_by_year[:, y] + carry
        taxes[:, y] = np.maximum(net, 0.0) * rate
        carry = np.minimum(net, 0.0)
    return taxes


def compute_metrics(
    result: SimResult,
    plan: Plan,
    dates: np.ndarray,
    baseline: IntArray,
    tax: TaxRates | None = None,
) -> dict[str, FloatArray]:
    """Return every metric per variant; ``baseline`` (V,) is each variant's never-rebalance row.

    With ``tax``, a ``taxes`` column estimates the tax on the realised gains: average cost has
    no short- or long-term split, so every gain is taxed at the long-term rate plus the state
    rate (:attr:`TaxRates.long_term_total`).

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
    metrics = {
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
    }
    if tax is not None:
        rate = float(tax.long_term_total)
        metrics["taxes"] = yearly_taxes(result.realised_by_year, rate).sum(axis=1)
    metrics["final_value"] = result.value[:, -1]
    metrics["rebalancing_benefit"] = ann - ann[baseline]
    return metrics
