"""Fixtures of the broker tests: simulated brokers on each test's database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from simmarket import CALENDAR, START, Sim, SimFactory

from rebal.adapters.brokers.simulated import SimulatedBroker, SimulatorSettings
from rebal.adapters.memory.clock import SimulatedClock
from rebal.adapters.memory.prices import InMemoryPrices


@pytest.fixture
def make_sim(database_url: str) -> Iterator[SimFactory]:
    """Make simulated brokers on the test's database (SQLite and PostgreSQL) or on ``url``,
    each with a clock of its own from ``start`` and the settings given as keyword arguments of
    :class:`SimulatorSettings`."""
    made: list[SimulatedBroker] = []

    def make(start: datetime = START, url: str = database_url, **settings: Any) -> Sim:
        clock = SimulatedClock(start)
        prices = InMemoryPrices()
        broker = SimulatedBroker(
            url,
            clock=clock,
            prices=prices,
            calendar=CALENDAR,
            settings=SimulatorSettings.model_validate(settings),
        )
        made.append(broker)
        sim = Sim(broker, clock, prices)
        sim.quote("VTI", "250.00", start - timedelta(days=1))
        sim.quote("BND", "72.50", start - timedelta(days=1))
        return sim

    yield make
    for broker in made:
        broker.close()


@pytest.fixture
def sim(make_sim: SimFactory) -> Sim:
    """A well-behaved simulated broker (no latency, slippage, partial fills or faults)."""
    return make_sim()
