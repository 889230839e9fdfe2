"""A store of every kind (in memory, SQLite, PostgreSQL), empty but for one firm, on a
simulated clock: the repository contract tests run on each."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from rebal.adapters.memory.clock import SimulatedClock
from rebal.adapters.memory.storage import InMemoryStore
from rebal.adapters.storage.database import create_engine
from rebal.adapters.storage.tables import metadata
from rebal.adapters.storage.unit_of_work import SqlStore
from rebal.domain.firm import Firm
from rebal.domain.ids import DEFAULT_FIRM
from rebal.ports.storage import Store

START = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(START)


@pytest.fixture
def bare_store(store_backend: str | None, clock: SimulatedClock) -> Iterator[Store]:
    """An empty store: no firm yet. (The schema comes from the tables; test_migrations shows
    the migrations build the very same.)"""
    if store_backend is None:
        yield InMemoryStore(clock)
        return
    engine = create_engine(store_backend)
    metadata.create_all(engine)
    try:
        yield SqlStore(engine, clock)
    finally:
        engine.dispose()


@pytest.fixture
def store(bare_store: Store) -> Store:
    """A store holding the default firm."""
    with bare_store.unit_of_work(actor="setup", reason="a firm to test with") as uow:
        uow.firms.add(Firm(id=DEFAULT_FIRM, name="Default", created_at=START))
        uow.commit()
    return bare_store
