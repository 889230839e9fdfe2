"""Throughput of a whole-book run: drift + statuses + `rails` orders for 1,000,000 accounts.

Builds, in memory, a book of 1,000,000 accounts x 10 positions (seeded; lognormal drift puts
about 45 % of accounts out of a 20 % relative band), times ``rebal.core.engine.propose`` with
the rails policy, and in the same process times the memory-bound reference
``quantity * price[symbol_index]`` over the same arrays: one gather and one multiply, the least
any valuation of the book must do. The ratio of the two is the figure to watch; it does not
depend on the machine's speed.

What bounds it: a run is one compiled loop (``rebal.core.engine._propose_rows``) that takes a
block of 128 accounts through every step (values, band edges, drift, statuses, policy choice,
the rails destination, orders in micro-shares and cents, weights after) before the next block,
so the block stays in cache and each of the result's ~20 (accounts, slots) arrays is written
once; chunks of 65,536 accounts run on every core. What is left is the per-account arithmetic
(about half) and writing the result: allocating and writing its ~1.2 GB alone costs about 7
reference passes. Measured 2026-11-22 on the shared, noisy 2-core machine, best of 3 runs:

* before (whole-array numpy steps, ~100 passes): engine 3.6 s, ratio 100;
* one compiled loop, one thread: engine 0.9-1.2 s, ratio 22-30;
* the same on both cores (the default): engine 0.55-0.85 s, ratio 12-19 (goal: 20 or less);
  with the other core busy, expect the one-thread figures. Rerun 2026-12-01, three runs:
  engine 0.66-0.80 s, ratio 14.9-20.7.

Run: ``.venv/bin/python benchmarks/batch.py [--accounts N]``. Last line:
``ratio_vs_memory_pass=<engine time / reference time>`` (goal: 20 or less).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import rebal.versioned_cache  # noqa: F401 - first: numba's cache for this source version
from rebal.adapters.executors.threads import ThreadExecutor
from rebal.core.bands import BandSpec
from rebal.core.book import BookArrays
from rebal.core.engine import RunConfig, propose

K = 10
UNIVERSE = 50


def make_book(n: int, seed: int = 7) -> BookArrays:
    """A book of ``n`` accounts on 10-security models with lognormal drift."""
    rng = np.random.default_rng(seed)
    price_of = rng.uniform(10, 500, UNIVERSE)
    symbol = np.stack([rng.choice(UNIVERSE, K, replace=False) for _ in range(256)])
    symbol = symbol[rng.integers(0, 256, n)]
    target = np.full((n, K), 1.0 / K)
    value = rng.lognormal(11, 1, n)[:, None] * target * rng.lognormal(0, 0.10, (n, K))
    quantity = np.rint(value / price_of[symbol] * 1e6).astype(np.int64)
    return BookArrays(
        symbol=symbol,
        quantity_micro=quantity,
        price=price_of[symbol],
        target=target,
        overrides=None,
        restricted=np.zeros((n, K), dtype=bool),
        cash_cents=rng.integers(0, 500_000, n),
        pending_cents=np.zeros(n, dtype=np.int64),
        cash_target=np.zeros(n),
        cash_overrides=None,
        has_cash_target=np.zeros(n, dtype=bool),
        has_model=np.ones(n, dtype=bool),
        can_trade=np.ones(n, dtype=bool),
        liquidate=np.zeros(n, dtype=bool),
    ), price_of


def best_of(runs: int, fn) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    book, price_of = make_book(args.accounts)
    config = RunConfig(policy="rails", bands=BandSpec(band_rel=0.20))
    quantity = book.quantity_micro / 1e6

    threads = ThreadExecutor()
    result = propose(book, config, executor=threads)
    engine = best_of(args.runs, lambda: propose(book, config, executor=threads))
    reference = best_of(args.runs, lambda: quantity * price_of[book.symbol])

    traded = int(result.traded.sum())
    orders = int(result.trades.count.sum())
    print(f"accounts={args.accounts:,} positions_per_account={K}")
    print(f"accounts_traded={traded:,} orders={orders:,}")
    print(f"engine_seconds={engine:.3f} accounts_per_second={args.accounts / engine:,.0f}")
    print(f"reference_seconds={reference:.4f}")
    print(f"ratio_vs_memory_pass={engine / reference:.1f}")


if __name__ == "__main__":
    main()
