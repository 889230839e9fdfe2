"""Reproducing Vanguard's 2010 rebalancing study on the shipped Shiller series.

Jaconetti, Kinniry and Zilbering, *Best practices for portfolio rebalancing* (Vanguard, 2010):
a 60 % stock / 40 % bond portfolio, monthly data 1926-2009, rebalanced to target when the stock
weight is more than 0/1/5/10 percentage points off target, looked at monthly, quarterly or
annually; and never rebalanced. Their table gives the average equity allocation and the number
of rebalancing events. ``docs/validation.md`` puts theirs and ours side by side.

Our run: month levels 1925-12 .. 2009-12 (so the 1008 monthly returns of 1926-2009), the
initial 60/40 purchase in 1925-12, reviews at the last month of each period (``day=-1``:
every month, March/June/September/December, December), absolute bands to target.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from rebal.backtest.history import PriceHistory
from rebal.backtest.schedule import ScheduleSpec
from rebal.backtest.sweep import run_lab
from rebal.backtest.variants import Variant
from rebal.core.bands import BandSpec

START = date(1925, 12, 1)
END = date(2009, 12, 1)
WEIGHTS = np.array([0.6, 0.4])
#: The initial value, ``rebal backtest``'s default: orders are the live engine's, in cents, so
#: a rebalance smaller than the minimum trade is not made (two monthly ones of the study).
INITIAL = 10_000.0

#: (frequency, threshold in percentage points or None for never) -> (avg equity %, events)
VANGUARD_2010: dict[tuple[str, float | None], tuple[float, int]] = {
    ("monthly", 0.0): (60.1, 1008),
    ("monthly", 1.0): (60.1, 389),
    ("monthly", 5.0): (61.2, 58),
    ("monthly", 10.0): (61.6, 20),
    ("quarterly", 1.0): (60.2, 210),
    ("quarterly", 5.0): (60.9, 50),
    ("quarterly", 10.0): (62.6, 21),
    ("annual", 1.0): (60.5, 72),
    ("annual", 5.0): (60.7, 28),
    ("annual", 10.0): (63.0, 15),
    ("never", None): (84.1, 0),
}


def vanguard_variants() -> list[Variant]:
    """The study's policies, in the order of :data:`VANGUARD_2010`."""
    out = []
    for frequency, threshold in VANGUARD_2010:
        if threshold is None:
            out.append(Variant("never"))
        else:
            out.append(
                Variant(
                    "threshold",
                    BandSpec(band_abs=threshold / 100.0, band_rel=None),
                    ScheduleSpec(frequency, day=-1),
                )
            )
    return out


def reproduce_vanguard(history: PriceHistory) -> pd.DataFrame:
    """Return Vanguard's figures and ours for every policy of the study, on ``history``: the
    shipped series (:func:`rebal.io.price_history.load_shipped`)."""
    source = history.between(START, END).select(["STOCKS", "BONDS"])
    run = run_lab(source, vanguard_variants(), WEIGHTS, initial=INITIAL)
    rows = []
    for i, ((frequency, threshold), (equity, events)) in enumerate(VANGUARD_2010.items()):
        ours_equity = float(run.table["avg_weight_STOCKS"].iloc[i]) * 100
        rows.append(
            {
                "frequency": frequency,
                "threshold_pp": threshold,
                "vanguard_avg_equity_pct": equity,
                "ours_avg_equity_pct": round(ours_equity, 2),
                "vanguard_events": events,
                "ours_events": int(run.table["events"].iloc[i]),
            }
        )
    return pd.DataFrame(rows)
