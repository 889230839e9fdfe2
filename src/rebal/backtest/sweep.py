"""Grids of policy variants run at once: one simulation for the whole grid, one table out.

The grids are read from their specifications (``--sweep`` specs, grid files) by
:mod:`rebal.io.sweep_grid`. Every run adds a never-rebalance baseline (unless the grid holds
one) so the rebalancing benefit can be measured; it is dropped from the table unless asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec

import numpy as np
import pandas as pd

from rebal.backtest.engine import LabPlan, SimResult
from rebal.backtest.history import PriceHistory
from rebal.backtest.lab import LabSimulation, simulate_lab
from rebal.backtest.variants import Variant
from rebal.core.types import FloatArray

P = ParamSpec("P")

BAND_FIELDS = ("band_abs", "band_rel", "rail_abs", "rail_rel", "wide_abs", "wide_rel")


@dataclass(frozen=True, slots=True)
class LabRun:
    """A finished run: the variants (baseline last if added), the plan, what it recorded."""

    history: PriceHistory
    variants: list[Variant]
    plan: LabPlan
    result: SimResult
    table: pd.DataFrame


def tabulate(run: LabSimulation) -> LabRun:
    """The results table of a finished simulation: one row per variant asked for (an added
    baseline is run but not tabulated)."""
    history, shown = run.history, run.shown
    table = _table(
        run.variants[:shown],
        {name: values[:shown] for name, values in run.metrics.items()},
        run.result.weight_sum[:shown] / (len(history.dates) - 1),
        history,
    )
    return LabRun(history, run.variants, run.plan, run.result, table)


def _tabulated(simulation: Callable[P, LabSimulation]) -> Callable[P, LabRun]:
    """``simulation`` followed by :func:`tabulate`, taking the same arguments."""

    def run(*args: P.args, **kwargs: P.kwargs) -> LabRun:
        return tabulate(simulation(*args, **kwargs))

    return run


#: :func:`rebal.backtest.lab.simulate_lab` (same arguments) with its results table: a
#: :class:`LabRun`.
run_lab = _tabulated(simulate_lab)


def _table(
    variants: list[Variant],
    metrics: dict[str, FloatArray],
    avg_weight: FloatArray,
    history: PriceHistory,
) -> pd.DataFrame:
    # Text columns built as string arrays: much faster than letting pandas infer them.
    columns: dict[str, object] = {
        "variant": pd.array([v.label() for v in variants], dtype="str"),
        "policy": pd.array([v.policy for v in variants], dtype="str"),
    }
    applied = [v.applied_widths() for v in variants]
    for name in BAND_FIELDS:
        # The widths the variant trades on (rails derived where not given); NaN where none.
        values = [widths[name] for widths in applied]
        columns[name] = np.array([np.nan if x is None else x for x in values], dtype=np.float64)
    columns["schedule"] = pd.array([v.reviews.describe() for v in variants], dtype="str")
    columns.update(metrics)
    columns["events"] = metrics["events"].astype(np.int64)
    for k, sym in enumerate(history.symbols):
        columns[f"avg_weight_{sym}"] = avg_weight[:, k]
    return pd.DataFrame(columns)
