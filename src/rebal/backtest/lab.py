"""One run of the lab without its table: the variants (a never-rebalance baseline added), the
plan, the simulation and its metrics, in arrays.

Kept apart from :mod:`rebal.backtest.sweep` (grids and the pandas results table) so that the
use case (:func:`rebal.services.usecases.backtest`) runs the lab without pandas;
:func:`rebal.backtest.sweep.tabulate` makes the table of a finished simulation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rebal.backtest.engine import Costs, LabExecutor, LabPlan, SimResult, simulate
from rebal.backtest.history import PriceHistory
from rebal.backtest.metrics import compute_metrics
from rebal.backtest.variants import Variant, build_plan
from rebal.core.types import FloatArray
from rebal.tax.lots import LotMethod
from rebal.tax.rates import TaxRates

#: Most variant-observations one run records (9 bytes each, value and trade flag: 2.25 GB).
MAX_CELLS = 250_000_000


@dataclass(frozen=True, slots=True)
class LabSimulation:
    """A finished simulation: the variants asked for (``shown``) and those run (a baseline last
    if one was added), the plan, what it recorded and the metrics of each variant run."""

    history: PriceHistory
    shown: int
    variants: list[Variant]
    plan: LabPlan
    result: SimResult
    metrics: dict[str, FloatArray]


def simulate_lab(
    history: PriceHistory,
    variants: list[Variant],
    weights: FloatArray,
    *,
    initial: float,
    flows: FloatArray | None = None,
    costs: Costs | None = None,
    record_weights: bool = False,
    on_progress: Callable[[float], None] | None = None,
    tax: TaxRates | None = None,
    lots: LotMethod = LotMethod.AVERAGE,
    executor: LabExecutor | None = None,
) -> LabSimulation:
    """Simulate ``variants`` holding ``weights`` (K,) over ``history`` and compute their metrics
    against a never-rebalance baseline (added unless a variant is one), large runs in batches of
    variants through ``executor`` (the caller's: threads, later a cluster; none runs them in
    this thread).

    Sales relieve tax lots by ``lots`` (``average``, ``fifo``, ``lifo``, ``hifo`` or
    ``min-tax``, which ranks lots by tax per unit at the ``tax`` rates when given); with ``tax``
    the metrics include ``taxes`` (see :func:`compute_metrics`).
    """
    if not variants:
        raise ValueError("nothing to run: no policy variants")
    if not np.isfinite(history.prices).all():
        raise ValueError(
            f"{history.source}: some symbols have no price on the first dates; "
            "history.between(start, end) starts where every symbol has one"
        )
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(history.symbols),) or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError("target weights must be one non-negative number per symbol, not all 0")
    weights = weights / weights.sum()
    run_variants = list(variants)
    never = [i for i, v in enumerate(variants) if v.policy == "never"]
    if never:
        base_row = never[0]
    else:
        run_variants.append(Variant("never"))
        base_row = len(run_variants) - 1
    n = len(run_variants)
    if n * len(history.dates) > MAX_CELLS:
        raise ValueError(
            f"{len(variants)} variants over {len(history.dates)} observations would need "
            f"{n * len(history.dates) * 9 / 1e9:.1f} GB; use fewer variants or a shorter period"
        )
    target = np.broadcast_to(weights, (n, len(weights))).copy()
    plan = build_plan(
        history,
        run_variants,
        target,
        initial=initial,
        flows=np.zeros(len(history.dates)) if flows is None else flows,
        costs=costs or Costs(),
        lots=lots,
        lot_rates=None
        if tax is None
        else (float(tax.short_term_total), float(tax.long_term_total)),
    )
    result = simulate(
        plan, record_weights=record_weights, on_progress=on_progress, executor=executor
    )
    metrics = compute_metrics(result, plan, history.dates, np.full(n, base_row), tax, executor)
    return LabSimulation(history, len(variants), run_variants, plan, result, metrics)
