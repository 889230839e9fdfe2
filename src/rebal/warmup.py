"""Compile every kernel ahead of its first use: ``python -m rebal.warmup`` (``make install``).

The core's per-account kernels and the backtest loop are compiled by numba on first call and
cached on disk (:mod:`rebal.compiled` says where); without this step the first
``rebal propose`` after an install spends a few seconds compiling and the first
``rebal backtest`` about twenty. It runs every policy once on a tiny book and every lab policy,
with every lab lot method, on a short generated history (with flows and costs), so the compiled
signatures are the ones real runs use. Caches of older versions of the source are removed.
"""

from __future__ import annotations

import time
from pathlib import Path

import numba
import numpy as np

import rebal.versioned_cache  # noqa: F401 - first: numba's cache for this source version
from rebal.backtest.engine import LAB_LOT_METHODS, Costs
from rebal.backtest.history import PriceHistory
from rebal.backtest.metrics import period_returns
from rebal.backtest.schedule import ScheduleSpec
from rebal.backtest.sweep import run_lab
from rebal.backtest.variants import CORE_POLICY, Variant
from rebal.compiled import remove_stale_caches
from rebal.core.engine import POLICY_NAMES, RunConfig, kept_cents, propose, weights_after
from rebal.core.trades import TradeRules, generate_trades
from rebal.testkit import make_book


def compile_core() -> None:
    """Run every policy of the core over a two-account book, one with a deposit to place, and
    the core's functions the tax-aware step calls on its own (kept cash, orders, weights)."""
    book = make_book(
        models=[("m", "A", "60"), ("m", "B", "40")],
        accounts=[("a1", "m", "100"), ("a2", "m", "0")],
        holdings=[("a1", "A", "10"), ("a1", "B", "1"), ("a2", "A", "3")],
        prices={"A": "10", "B": "20"},
    )
    a = book.arrays
    for name in POLICY_NAMES:
        proposal = propose(a, RunConfig(policy=name, all_accounts=True))
    keep = kept_cents(a, proposal.drift, 0.0)
    desired = np.nan_to_num(proposal.drift.value)
    tradable = a.used & ~a.restricted
    trades = generate_trades(
        a.quantity_micro,
        a.price,
        desired,
        a.cash_cents,
        a.pending_cents,
        keep,
        tradable,
        TradeRules(),
    )
    weights_after(a, proposal.drift, trades)


def compile_lab() -> None:
    """Run every lab policy and lot method over 60 generated days with monthly flows and
    costs."""
    days = 60
    dates = np.busday_offset("2020-01-01", np.arange(days), roll="forward").astype("datetime64[D]")
    steps = np.random.default_rng(0).normal(0.0, 0.02, (days, 2))
    history = PriceHistory(dates, ("A", "B"), 10 * np.exp(np.cumsum(steps, axis=0)), "warm-up")
    flows = np.zeros(days)
    flows[ScheduleSpec("monthly").mask(dates)] = 50.0
    variants = [Variant(policy, schedule=ScheduleSpec("daily")) for policy in CORE_POLICY]
    for lots in LAB_LOT_METHODS:
        run = run_lab(
            history,
            variants,
            np.array([0.6, 0.4]),
            initial=1_000.0,
            flows=flows,
            costs=Costs(bps=5, fixed=1.0),
            record_weights=True,
            lots=lots,
        )
        period_returns(run.result)


def main() -> None:
    start = time.perf_counter()
    compile_core()
    compile_lab()
    cache = Path(numba.config.CACHE_DIR)  # type: ignore[attr-defined]
    remove_stale_caches(cache)
    print(f"rebal: kernels compiled and cached in {time.perf_counter() - start:.0f} s ({cache})")


if __name__ == "__main__":
    main()
