"""Fixtures shared by the core tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def four_etfs() -> list[tuple[str, str, str]]:
    """Seed 001's model: A 40 %, B, C and D 20 % each."""
    return [("m", "A", "40"), ("m", "B", "20"), ("m", "C", "20"), ("m", "D", "20")]
