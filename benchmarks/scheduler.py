"""Speed of one scheduler tick's decisions over 100,000 accounts, against the core's drift.

Builds in memory a book of 100,000 accounts (the book of ``benchmarks/batch.py``) with mixed
programs (managed / client-directed), triggers (calendar / threshold), last-rebalance times over
the past year, pending cash and model changes, and times :func:`rebal.core.triggers.decide` for
one tick inside a trading window: the decision path of ``rebal scheduler --once --dry-run``
(every account decided, no run created, no store read). In the same process it times the core's
``rebal drift`` over the same book (``propose`` with ``trade=False``), whose breach flags the
tick reads. Each figure is the best of 3 runs.

Run: ``.venv/bin/python benchmarks/scheduler.py [--accounts N]``. Last line:
``ratio_vs_drift=<tick time / drift time>`` (aim: 3 or less).
"""

from __future__ import annotations

import argparse

import numpy as np

import rebal.versioned_cache  # noqa: F401 - first: numba's cache for this source version
from batch import best_of, make_book
from rebal.adapters.executors.threads import ThreadExecutor
from rebal.core.bands import BandSpec
from rebal.core.engine import RunConfig, propose
from rebal.core.triggers import Accounts, Window, decide

RUN_AT = np.datetime64("2026-12-02T19:30:00", "s")
DAY = np.timedelta64(86_400, "s")


def make_accounts(n: int, breached: np.ndarray, value: np.ndarray, seed: int = 11) -> Accounts:
    """Mixed programs, triggers and histories for ``n`` accounts (seeded)."""
    rng = np.random.default_rng(seed)
    last = RUN_AT - rng.integers(1, 365 * 86_400, n).astype("timedelta64[s]")
    last[rng.random(n) < 0.02] = np.datetime64("NaT", "s")
    return Accounts(
        program=rng.integers(0, 2, n).astype(np.int8),
        trigger=rng.integers(0, 2, n).astype(np.int8),
        last_rebalance_at=last,
        value=value,
        breached=breached,
        cash_pending=rng.random(n) < 0.05,
        model_changed=rng.random(n) < 0.01,
        instant=rng.random(n) < 0.001,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    n = parser.parse_args().accounts
    book, _ = make_book(n)
    config = RunConfig(bands=BandSpec(band_abs=None, band_rel=0.20), trade=False)
    executor = ThreadExecutor()
    result = propose(book, config, executor=executor)
    drift_time = best_of(3, lambda: propose(book, config, executor=executor))
    breached = np.asarray(result.drift.breach).any(axis=1)
    accounts = make_accounts(n, breached, np.asarray(result.drift.total))
    window = Window(RUN_AT + 60, RUN_AT, RUN_AT + 5400, RUN_AT + DAY, market_open=True)
    decided = decide(accounts, window)
    tick_time = best_of(3, lambda: decide(accounts, window))
    counts = np.bincount(decided.decision, minlength=4)
    print(f"accounts: {n:,}; decisions not_due/run/skipped/postponed: {counts.tolist()}")
    print(f"tick (dry-run decisions): {tick_time:.4f} s, {n / tick_time:,.0f} accounts decided/s")
    print(f"core drift over the same book: {drift_time:.4f} s")
    print(f"ratio_vs_drift={tick_time / drift_time:.3f}")


if __name__ == "__main__":
    main()
