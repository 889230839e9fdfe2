"""Shared fixtures of the backtest tests: small generated price histories."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from rebal.backtest.history import PriceHistory


def generated_history(
    days: int = 520, symbols: tuple[str, ...] = ("A", "B", "C"), seed: int = 7
) -> PriceHistory:
    """Business-day prices from a seeded random walk (volatile enough to breach bands often)."""
    rng = np.random.default_rng(seed)
    dates = np.busday_offset("2015-01-01", np.arange(days), roll="forward")
    vols = np.linspace(0.008, 0.02, len(symbols))
    steps = rng.normal(0.0003, vols, size=(days, len(symbols)))
    prices = 50.0 * np.exp(np.cumsum(steps, axis=0))
    return PriceHistory(dates.astype("datetime64[D]"), symbols, prices, "generated")


@pytest.fixture
def history() -> PriceHistory:
    return generated_history()


@pytest.fixture(scope="session")
def make_history() -> Callable[..., PriceHistory]:
    """The generator itself, for tests that draw their own histories."""
    return generated_history
