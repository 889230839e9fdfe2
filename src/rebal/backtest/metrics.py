"""Metrics of a simulation, one value per variant; each is defined in ``docs/backtest.md``.

Returns are time-weighted: the return of observation t is the value after t's trades, costs
and flows, less t's flow, over the value after t-1. Cash flows therefore do not count as
performance, but costs do.

Taxes are estimated, not paid: each calendar year's short- and long-term realised gains, with
the losses carried forward from earlier years, are netted as the IRS nets them and taxed at
their term's rate (see :func:`yearly_taxes`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rebal.backtest.engine import LabExecutor, LabPlan, SimResult, in_batches
from rebal.core.kernels import kernel
from rebal.core.types import FloatArray, IntArray, dense
from rebal.tax.rates import TaxRates

DAYS_PER_YEAR = 365.25
#: Metrics in currency units (shown and written to the cent).
MONEY_COLUMNS = ("costs", "realised_gains", "realised_st", "realised_lt", "taxes", "final_value")


def money_text(value: float) -> str:
    """A money metric as shown: to the cent, thousands separated, never ``-0.00``."""
    return f"{round(value, 2) + 0.0:,.2f}"


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


@kernel
def _period_return(after: float, flow: float, before: float) -> float:
    """Return of one observation: value after it, less its flow, over the value before."""
    return (after - flow) / before - 1.0 if before > 0 else 0.0


@kernel
def _returns(value: FloatArray, flow_times: IntArray, flow_done: FloatArray) -> Any:
    """Time-weighted return (V, T-1) of every variant over every observation after the first."""
    n, n_obs = value.shape
    out = np.empty((n, n_obs - 1))
    for v in range(n):
        slot = 0
        for t in range(1, n_obs):
            flow = 0.0
            if slot < flow_times.shape[0] and flow_times[slot] == t:
                flow = flow_done[v, slot]
                slot += 1
            out[v, t - 1] = _period_return(value[v, t], flow, value[v, t - 1])
    return out


@kernel
def _return_stats(
    value: FloatArray,
    flow_times: IntArray,
    flow_done: FloatArray,
    target: FloatArray,
    asset: FloatArray,
) -> Any:
    """Per variant: growth of 1, sample variance of returns, maximum drawdown and sample
    variance of the return less the continuously rebalanced target's (asset returns (T-1, K)),
    in one pass (Welford's running variance)."""
    n, n_obs = value.shape
    out = np.zeros((n, 4))
    for v in range(n):
        slot = 0
        growth, peak, worst = 1.0, 1.0, 0.0
        mean, m2, active_mean, active_m2 = 0.0, 0.0, 0.0, 0.0
        for t in range(1, n_obs):
            flow = 0.0
            if slot < flow_times.shape[0] and flow_times[slot] == t:
                flow = flow_done[v, slot]
                slot += 1
            r = _period_return(value[v, t], flow, value[v, t - 1])
            growth *= 1.0 + r
            peak = max(peak, growth)
            worst = min(worst, growth / peak - 1.0)
            active = r
            for j in range(asset.shape[1]):
                active -= target[v, j] * asset[t - 1, j]
            delta = r - mean
            mean += delta / t
            m2 += delta * (r - mean)
            delta = active - active_mean
            active_mean += delta / t
            active_m2 += delta * (active - active_mean)
        periods = max(n_obs - 2, 1)  # ddof = 1
        out[v, 0], out[v, 1] = growth, m2 / periods
        out[v, 2], out[v, 3] = worst, active_m2 / periods
    return out


def period_returns(result: SimResult) -> FloatArray:
    """Time-weighted return of every variant over every observation after the first."""
    out: FloatArray = _returns(dense(result.value), result.flow_times, dense(result.flow_done))
    return out


def asset_returns(plan: LabPlan) -> FloatArray:
    """Return of every asset over every observation after the first (T-1, K)."""
    out: FloatArray = plan.prices[1:] / plan.prices[:-1] - 1.0
    return out


def years_between(dates: np.ndarray) -> float:
    """Length of the history in years of 365.25 days."""
    days = (dates[-1] - dates[0]).astype("timedelta64[D]").astype(np.int64)
    return float(days) / DAYS_PER_YEAR


def yearly_taxes(
    realised_st_by_year: FloatArray, realised_lt_by_year: FloatArray, rates: TaxRates
) -> FloatArray:
    """Estimated tax (V, Y) on short- and long-term realised gains by calendar year (V, Y).

    IRS netting by character, with carryforward: each year, each term's net gain plus that
    term's loss carried from earlier years; a net loss in one term offsets a net gain in the
    other (:func:`rebal.tax.rates.net_gains`); the short-term gain left is taxed at
    :attr:`TaxRates.short_term_total`, the long-term one at :attr:`TaxRates.long_term_total`,
    and a net loss left is carried forward keeping its character (no refund, no offset against
    other income). With equal rates this is one rate on each year's total net gain less the
    losses carried.
    """
    short_rate, long_rate = float(rates.short_term_total), float(rates.long_term_total)
    taxes = np.zeros_like(realised_st_by_year)
    n = realised_st_by_year.shape[0]
    carry_st, carry_lt = np.zeros(n), np.zeros(n)  # losses not yet used, <= 0
    for y in range(realised_st_by_year.shape[1]):
        st = realised_st_by_year[:, y] + carry_st
        lt = realised_lt_by_year[:, y] + carry_lt
        net = st + lt
        # A term's net loss goes first against the other term's net gain.
        taxed_st = np.where(lt < 0, np.maximum(net, 0.0), st) * (st > 0)
        taxed_lt = np.where(st < 0, np.maximum(net, 0.0), lt) * (lt > 0)
        taxes[:, y] = taxed_st * short_rate + taxed_lt * long_rate
        carry_st = np.where(lt > 0, np.minimum(net, 0.0), st) * (st < 0)
        carry_lt = np.where(st > 0, np.minimum(net, 0.0), lt) * (lt < 0)
    return taxes


def compute_metrics(
    result: SimResult,
    plan: LabPlan,
    dates: np.ndarray,
    baseline: IntArray,
    tax: TaxRates | None = None,
    executor: LabExecutor | None = None,
) -> dict[str, FloatArray]:
    """Return every metric per variant; ``baseline`` (V,) is each variant's never-rebalance row
    (the return statistics in batches of variants through ``executor``).

    ``realised_st`` and ``realised_lt`` split ``realised_gains`` by holding period. With
    ``tax``, a ``taxes`` column estimates the tax on them (:func:`yearly_taxes`).
    """
    years = years_between(dates)
    periods = result.value.shape[1] - 1
    scale = np.sqrt(periods / years)
    stats = np.zeros((result.value.shape[0], 4))
    value, flow_done = dense(result.value), dense(result.flow_done)
    target, asset = dense(plan.target), dense(asset_returns(plan))

    def work(rows: slice) -> None:
        stats[rows] = _return_stats(
            value[rows], result.flow_times, flow_done[rows], target[rows], asset
        )

    in_batches(len(stats), periods, work, executor)
    growth = stats[:, 0]
    ann = np.where(growth > 0, growth ** (1.0 / years) - 1.0, -1.0)
    metrics = {
        "annual_return": ann,
        "volatility": np.sqrt(stats[:, 1]) * scale,
        "max_drawdown": stats[:, 2],
        "avg_abs_drift": result.drift_sum / periods,
        "max_abs_drift": result.drift_max,
        "tracking_error": np.sqrt(stats[:, 3]) * scale,
        "events": result.events.astype(np.float64),
        "turnover": result.turnover / years,
        "costs": result.costs,
        "realised_gains": result.realised,
        "realised_st": result.realised_st_by_year.sum(axis=1),
        "realised_lt": result.realised_lt_by_year.sum(axis=1),
    }
    if tax is not None:
        taxes = yearly_taxes(result.realised_st_by_year, result.realised_lt_by_year, tax)
        metrics["taxes"] = taxes.sum(axis=1)
    metrics["final_value"] = result.value[:, -1]
    metrics["rebalancing_benefit"] = ann - ann[baseline]
    return metrics
