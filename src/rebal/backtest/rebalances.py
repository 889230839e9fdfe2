"""Every rebalance of a run, as rows a program reads: when each variant traded, and what.

A run recorded with ``record_weights`` keeps, per variant and observation, the weights before
trading and the value each trade by the policy moved (:attr:`SimResult.trades`). This module
turns them into one row per rebalance and asset, for ``rebal backtest --trades FILE`` (CSV or
JSON). Figures are the engine's float64 values, written with every digit (no rounding).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from rebal.backtest.sweep import LabRun

#: The columns of a trades CSV, one row per rebalance and asset.
TRADE_COLUMNS = (
    "variant",
    "date",
    "value_before",
    "value_after",
    "symbol",
    "weight_before",
    "weight_after",
    "amount",
)


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


def trades_csv(events: list[dict[str, Any]]) -> str:
    """The rebalances as CSV, one line per rebalance and asset (:data:`TRADE_COLUMNS`); floats
    with the shortest digits that read back to the same value."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(TRADE_COLUMNS)
    for event in events:
        for sym, asset in event["assets"].items():
            head = [event["variant"], event["date"], event["value_before"], event["value_after"]]
            writer.writerow(
                [*head, sym, asset["weight_before"], asset["weight_after"], asset["amount"]]
            )
    return buf.getvalue()


def trades_json(events: list[dict[str, Any]]) -> str:
    """The rebalances as a JSON list, one object per rebalance (assets by symbol)."""
    return json.dumps(events, indent=2) + "\n"
