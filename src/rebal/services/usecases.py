"""The use cases every entry point runs: drift, propose, backtest, wash sales.

Each takes one validated request (:mod:`rebal.services.requests`) and the data it works on in the
form the core computes with (a book as arrays, a price history, a transaction history), and
returns the core's typed result. Arranging the four tables into arrays and the tax-aware run
(which re-reads the tables' lots) need pandas, which this layer may not import: they are
:func:`rebal.proposing.drift_tables` and :func:`rebal.proposing.propose_tables`, which call the
use cases here. The lab's table of metrics is :func:`rebal.backtest.sweep.tabulate`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import numpy as np

from rebal.backtest.engine import LabExecutor
from rebal.backtest.history import PriceHistory
from rebal.backtest.lab import LabSimulation, simulate_lab
from rebal.backtest.variants import Variant
from rebal.core.book import BookArrays
from rebal.core.engine import ChunkExecutor, Proposal
from rebal.core.engine import propose as run_engine
from rebal.services.requests import (
    BacktestRequest,
    DriftRequest,
    ProposeRequest,
    WashSalesRequest,
)
from rebal.tax.wash_sales import WashSaleResult, compute_wash_sales

Progress = Callable[[int, int], None]


def drift(
    request: DriftRequest,
    book: BookArrays,
    executor: ChunkExecutor | None = None,
    on_progress: Progress | None = None,
) -> Proposal:
    """Drift and statuses of every account of ``book`` (a proposal with no orders)."""
    return run_engine(book, request.config(), on_progress, executor)


def propose(
    request: ProposeRequest,
    book: BookArrays,
    executor: ChunkExecutor | None = None,
    on_progress: Progress | None = None,
) -> Proposal:
    """The orders of every account of ``book`` under the request's policy, bands and rules;
    ``book`` carries the request's flows (:meth:`ProposeRequest.flows`) as pending cash."""
    return run_engine(book, request.config(), on_progress, executor)


def backtest(
    request: BacktestRequest,
    history: PriceHistory,
    variants: Sequence[Variant] | None = None,
    *,
    record_weights: bool = False,
    on_progress: Callable[[float], None] | None = None,
    executor: LabExecutor | None = None,
) -> LabSimulation:
    """Simulate the request's policy (or ``variants``, a grid made from it) over ``history``
    (the symbols the request holds, from its ``start`` to its ``end``), holding the request's
    weights, with its flows (``flow`` on each ``flow_frequency`` date), costs and lots; large
    grids in batches of variants through ``executor``.

    A history without the symbols or the period raises ``ValueError`` naming them."""
    target = request.target()
    if target is not None:
        history = history.select(list(target))
    history = history.between(request.start, request.end)
    count = len(history.symbols)
    # The request's weights (in the history's symbol order, as selected), else equal ones.
    weights = np.full(count, 1.0 / count) if target is None else np.array(list(target.values()))
    flows = np.zeros(len(history.dates))
    if request.flow:
        flows[request.flow_schedule().mask(history.dates)] = request.flow
    return simulate_lab(
        history,
        list(variants) if variants is not None else [request.variant()],
        weights,
        initial=request.initial,
        flows=flows,
        costs=request.costs(),
        record_weights=record_weights,
        on_progress=on_progress,
        tax=request.tax_rates(),
        lots=request.lot_method(),
        executor=executor,
    )


def wash_sales(request: WashSalesRequest) -> WashSaleResult:
    """Every sale's lots, the wash sales and the lots left, across each household."""
    groups: list[Collection[str]] = [set(group) for group in request.identical_groups()]
    return compute_wash_sales(request.transactions, identical=groups)
