"""Every rebalance of a run, as rows a program reads: when each variant traded, and what.

A run recorded with ``record_weights`` keeps, per variant and observation, the weights before
trading and the value each trade by the policy moved (:attr:`SimResult.trades`). This module
turns them into one record per rebalance, for ``rebal backtest --trades FILE`` (written as CSV
or JSON by :mod:`rebal.io.lab_trades`). Figures are the engine's float64 values.
"""

from __future__ import annotations

from typing import Any

from rebal.backtest.sweep import LabRun


def rebalances(run: LabRun, rows: int) -> list[dict[str, Any]]:
    """The rebalances of the first ``rows`` variants of ``run`` (recorded), in variant and date
    order: ``variant`` (label), ``date``, the portfolio's ``value_before`` and ``value_after``
    the trade (its flow and costs included) and, per symbol, ``weight_before``,
    ``weight_after`` and ``amount`` (value bought, negative for sold)."""
    result = run.result
    if result.weights is None or result.trades is None:
        raise ValueError("the run did not record its weights and trades (record_weights=True)")
    out: list[dict[str, Any]] = []
    for v in range(rows):
        label = run.variants[v].label()
        for t in result.event_dates(v).tolist():
            after = float(result.value[v, t])
            amounts = result.trades[v, t]
            before = after - float(amounts.sum())
            held_after = result.weights[v, t] * before + amounts
            assets = {
                sym: {
                    "weight_before": float(result.weights[v, t, k]),
                    "weight_after": float(held_after[k] / after) if after > 0 else 0.0,
                    "amount": float(amounts[k]),
                }
                for k, sym in enumerate(run.history.symbols)
            }
            date = str(run.history.dates[t])
            out.append(
                {
                    "variant": label,
                    "date": date,
                    "value_before": before,
                    "value_after": after,
                    "assets": assets,
                }
            )
    return out
