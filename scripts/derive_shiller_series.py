"""Derive the shipped monthly US stock and 10-year Treasury total-return series from Shiller.

Reads ``shiller_ie_data.csv`` (Robert Shiller's ``ie_data.xls``, sheet "Data", converted to CSV;
public domain, ODC-PDDL-1.0 via github.com/datasets/s-and-p-500) and writes
``src/rebal/data/history/shiller_us_stock_bond_monthly.csv`` with columns ``date,stocks,bonds``:
nominal total-return index levels, both 1.0 in January 1871.

* stocks: Shiller's real total-return price (dividends reinvested) re-inflated with his CPI,
  ``Real_TR_Price[t] * CPI[t]``, scaled to 1.0 at the first month. The month-on-month ratio is
  therefore ``Real_TR_Price[t+1] / Real_TR_Price[t] * CPI[t+1] / CPI[t]`` as SOURCES.md states.
* bonds: the cumulative product of ``Monthly_Total_Bond_Returns``, Shiller's nominal gross
  one-month return of a 10-year Treasury computed from GS10; the value on row t is the return
  from month t to month t+1, so level[t+1] = level[t] * return[t].

The output is deterministic (fixed formatting, no clock). Run from the repository root:

    .venv/bin/python scripts/derive_shiller_series.py [SOURCE_CSV] [OUTPUT_CSV]
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

DEFAULT_SOURCE = Path("../shared/data/datasets_s-and-p-500/shiller_ie_data.csv")
DEFAULT_OUTPUT = Path("src/rebal/data/history/shiller_us_stock_bond_monthly.csv")


def derive(rows: list[dict[str, str]]) -> list[tuple[str, float, float]]:
    """Return ``(date, stocks, bonds)`` index levels for every month of ``rows``."""
    first_tr = float(rows[0]["Real_TR_Price"]) * float(rows[0]["CPI"])
    out: list[tuple[str, float, float]] = []
    bond = 1.0
    for i, row in enumerate(rows):
        if i > 0:
            gross = rows[i - 1]["Monthly_Total_Bond_Returns"]
            if not gross:
                raise ValueError(f"row {row['Date']}: no bond return for the month before")
            bond *= float(gross)
        stock = float(row["Real_TR_Price"]) * float(row["CPI"]) / first_tr
        out.append((f"{row['Date']}-01", stock, bond))
    return out


def main(argv: list[str]) -> int:
    """Read the Shiller CSV, write the derived series, return an exit code."""
    source = Path(argv[1]) if len(argv) > 1 else DEFAULT_SOURCE
    output = Path(argv[2]) if len(argv) > 2 else DEFAULT_OUTPUT
    with source.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["Real_TR_Price"] and r["CPI"]]
    series = derive(rows)
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["date", "stocks", "bonds"])
        for date, stock, bond in series:
            writer.writerow([date, f"{stock:.12g}", f"{bond:.12g}"])
    print(f"wrote {len(series)} months {series[0][0]}..{series[-1][0]} to {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
