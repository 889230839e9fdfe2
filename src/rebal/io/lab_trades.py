"""Write the lab's rebalances (:func:`rebal.backtest.rebalances.rebalances`) as a trades file:
``rebal backtest --trades FILE.csv`` or ``FILE.json``. Floats are written with every digit (the
shortest text that reads back to the same value), no rounding.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

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
