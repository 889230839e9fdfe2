"""The compiled run and the core's public functions are one implementation.

``propose`` runs the kernels of bands, drift, status, trades and weights in one compiled loop,
chunk by chunk and on every core; callers that use the public functions on their own (the
tax-aware step, the backtest reference) must get exactly what the run gets, however the book is
split into chunks.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any

import numpy as np
import pytest

from rebal.core import engine
from rebal.core.bands import BandSpec, band_edges, run_band_params
from rebal.core.book import BookArrays
from rebal.core.drift import measure_drift
from rebal.core.engine import POLICY_NAMES, RunConfig, propose, weights_after
from rebal.core.status import classify


def _book(n: int, k: int = 6, seed: int = 3) -> BookArrays:
    """Varied accounts: padding, missing prices, restrictions, flows, debits, liquidations."""
    rng = np.random.default_rng(seed)
    symbol = np.where(rng.random((n, k)) < 0.15, -1, rng.integers(0, 20, (n, k)))
    used = symbol >= 0
    price = np.where(rng.random((n, k)) < 0.01, np.nan, rng.uniform(1, 500, (n, k)))
    target = np.where(used & (rng.random((n, k)) > 0.2), rng.dirichlet(np.ones(k), n), 0.0)
    quantity = np.where(used, np.rint(rng.lognormal(3, 1.5, (n, k)) * 1e6), 0).astype(np.int64)
    return BookArrays(
        symbol=symbol,
        quantity_micro=quantity,
        price=price,
        target=target,
        overrides=None,
        restricted=used & (rng.random((n, k)) < 0.05),
        cash_cents=rng.integers(-5_000, 500_000, n),
        pending_cents=np.where(rng.random(n) < 0.2, rng.integers(-300_000, 300_000, n), 0),
        cash_target=np.zeros(n),
        cash_overrides=None,
        has_cash_target=np.zeros(n, dtype=bool),
        has_model=rng.random(n) > 0.03,
        can_trade=rng.random(n) > 0.05,
        liquidate=rng.random(n) < 0.03,
    )


def _arrays(record: Any, prefix: str = "") -> dict[str, np.ndarray]:
    if not is_dataclass(record):
        return {prefix: np.asarray(record)}
    out: dict[str, np.ndarray] = {}
    for f in fields(record):
        out.update(_arrays(getattr(record, f.name), f"{prefix}.{f.name}"))
    return out


def _assert_same(left: Any, right: Any) -> None:
    a, b = _arrays(left), _arrays(right)
    assert a.keys() == b.keys()
    for name in a:
        assert np.array_equal(a[name], b[name], equal_nan=a[name].dtype.kind == "f"), name


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_a_book_split_into_chunks_on_several_threads_gets_the_same_proposal(
    policy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = _book(300)
    config = RunConfig(policy=policy, all_accounts=policy == "full")
    whole = propose(book, config)
    monkeypatch.setattr(engine, "CHUNK_ACCOUNTS", 7)
    done: list[int] = []
    chunked = propose(book, config, on_progress=lambda d, total: done.append(d))
    _assert_same(whole, chunked)
    assert done == sorted(done) and done[-1] == 300 and len(done) == -(-300 // 7)


def test_the_public_functions_give_what_the_run_gives() -> None:
    book = _book(400)
    bands = BandSpec(band_rel=0.2)
    result = propose(book, RunConfig(policy="rails", bands=bands))
    edges = band_edges(book.target, run_band_params(bands))
    _assert_same(edges, result.drift.edges)
    n = book.n_accounts
    drift = measure_drift(
        book.value,
        book.cash_cents / 100.0,
        book.target,
        edges,
        book.used,
        cash_target=np.zeros(n),
        cash_edges=(np.zeros(n), np.ones(n)),
    )
    _assert_same(drift, result.drift)
    statuses = classify(
        drift,
        has_model=book.has_model,
        can_trade=book.can_trade,
        liquidate=book.liquidate,
        flow=book.pending_cents / 100.0,
        restricted=book.restricted,
        used=book.used,
    )
    _assert_same(statuses, result.statuses)
    after = weights_after(book, drift, result.trades)
    assert np.array_equal(after, result.weight_after, equal_nan=True)
