"""Fixtures of the run tests: a desk (store, broker, clock) on each test's database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rundesk import Desk, make_desk, small_book


@pytest.fixture
def desk(database_url: str) -> Iterator[Desk]:
    made = make_desk(database_url, small_book())
    yield made
    made.store.engine.dispose()
