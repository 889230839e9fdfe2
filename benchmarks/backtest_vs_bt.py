"""bt versus rebal on the same daily threshold policy, then a 1,000-policy rebal sweep.

Six assets at equal weights, a relative 20 % band checked every day, about 20 years of daily
prices: ``../shared/data/derived/etf6_daily_adjclose_wide.csv`` when present (validation data,
never shipped), else generated prices of the same shape. Both run in this process on the same
prices; the script checks that they rebalance on the same dates and end within 1e-9 of each
other, then prints the timings. The last line is ``speedup_vs_bt=<bt time / rebal time>``.

    .venv/bin/python benchmarks/backtest_vs_bt.py

Measured 2026-11-22 on the shared 2-core development machine (load average about 1), three runs:
bt 391-424 ms, rebal 2.0-2.1 ms for the one policy, ``speedup_vs_bt`` 186 to 198; the
1,000-policy sweep 0.14 to 0.19 s, before bt finishes one backtest. See ``docs/validation.md``
(speed) for how, and for the spread on a loaded machine. Rerun 2026-12-01: ``speedup_vs_bt``
194 to 216, sweeps 0.19 to 0.21 s against bt's 0.39 to 0.51 s.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

import rebal.versioned_cache  # noqa: F401 - first: numba's cache for this source version
from rebal.adapters.executors.threads import ThreadExecutor
from rebal.backtest.history import PriceHistory
from rebal.backtest.schedule import ScheduleSpec
from rebal.backtest.sweep import run_lab
from rebal.backtest.variants import Variant
from rebal.core.bands import BandSpec
from rebal.io.price_history import load_prices

ETF6 = Path(__file__).resolve().parents[2] / "shared/data/derived/etf6_daily_adjclose_wide.csv"
BAND_REL = 0.20
CAPITAL = 1_000_000.0


def history() -> PriceHistory:
    """The six-ETF file when present, else seeded random prices of the same shape."""
    if ETF6.exists():
        return load_prices(ETF6)
    rng = np.random.default_rng(2004)
    days = 5182
    dates = np.busday_offset("2004-11-18", np.arange(days), roll="forward")
    vols = np.array([0.012, 0.004, 0.009, 0.011, 0.02, 0.013])
    prices = 50 * np.exp(np.cumsum(rng.normal(0.0003, vols, (days, 6)), axis=0))
    symbols = ("SPY", "AGG", "TLT", "GLD", "VNQ", "EFA")
    return PriceHistory(dates.astype("datetime64[D]"), symbols, prices, "generated")


def best_time(fn: Callable[[], object], repeat: int) -> float:
    """The fastest of ``repeat`` runs, in seconds (the least disturbed by other processes)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    import bt

    warnings.simplefilter("ignore")  # ffn's pandas deprecation noise
    h = history()
    k = len(h.symbols)
    weights = np.full(k, 1.0 / k)
    data = pd.DataFrame(h.prices, index=pd.DatetimeIndex(h.dates), columns=h.symbols)
    print(f"data: {h.source}, {len(h.dates)} days x {k} assets, {h.dates[0]} to {h.dates[-1]}")

    def run_bt() -> bt.backtest.Result:
        algos = [
            bt.algos.WeighSpecified(**dict(zip(h.symbols, weights, strict=True))),
            bt.algos.Or([bt.algos.RunOnce(), bt.algos.RunIfOutOfBounds(BAND_REL)]),
            bt.algos.Rebalance(),
        ]
        test = bt.Backtest(
            bt.Strategy("threshold", algos),
            data,
            integer_positions=False,
            initial_capital=CAPITAL,
        )
        return bt.run(test)

    variant = Variant("threshold", BandSpec(band_rel=BAND_REL), ScheduleSpec("daily"))

    def run_rebal() -> object:
        return run_lab(h, [variant], weights, initial=CAPITAL)

    # Agreement first: same rebalance dates, same final value.
    theirs = run_bt()
    ours = run_lab(h, [variant], weights, initial=CAPITAL)
    bt_dates = list(
        theirs.get_transactions().index.get_level_values(0).unique().values.astype("datetime64[D]")
    )
    our_dates = [h.dates[0], *h.dates[ours.result.event_dates(0)]]
    bt_final = float(theirs.backtests["threshold"].strategy.values.iloc[-1])
    our_final = float(ours.result.value[0, -1])
    rel = abs(our_final - bt_final) / bt_final
    assert bt_dates == our_dates, "bt and rebal rebalance on different dates"
    # The lab rounds orders to cents as the live engine does; bt trades unrounded amounts.
    assert rel < 1e-6, f"final values differ by {rel:.2e}"
    print(
        f"agreement: {len(our_dates)} rebalances on the same dates, final value "
        f"{our_final:,.2f} vs bt {bt_final:,.2f} (relative difference {rel:.1e})"
    )

    bt_time = best_time(run_bt, 3)
    rebal_time = best_time(run_rebal, 20)
    print(f"bt: {bt_time * 1e3:.1f} ms   rebal: {rebal_time * 1e3:.2f} ms   (best of 3 / 20)")

    grid = [
        Variant(policy, BandSpec(band_rel=float(band)), ScheduleSpec(frequency))
        for policy in ("threshold", "rails")
        for frequency in ("daily", "weekly")
        for band in np.linspace(0.05, 0.50, 250)
    ]
    sweep_time = best_time(
        lambda: run_lab(h, grid, weights, initial=CAPITAL, executor=ThreadExecutor()), 2
    )
    per_policy = bt_time * len(grid) / sweep_time
    print(
        f"sweep: {len(grid)} policies in {sweep_time:.2f} s "
        f"({sweep_time / len(grid) * 1e3:.2f} ms per policy; bt takes {bt_time:.2f} s for one; "
        f"per-policy speedup {per_policy:.0f}x)"
    )
    print(f"speedup_vs_bt={bt_time / rebal_time:.1f}")


if __name__ == "__main__":
    main()
