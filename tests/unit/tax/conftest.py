"""Shared fixtures for the tax tests: where the reference vectors live outside the repo."""

import json
from pathlib import Path
from typing import Any

import pytest

VECTORS = Path(__file__).resolve().parents[4] / "shared" / "test_vectors"


@pytest.fixture(scope="session")
def irs_examples() -> dict[str, Any]:
    """IRS Pub 550/564 worked examples from ../shared (skips when the file is absent)."""
    path = VECTORS / "irs_examples.json"
    if not path.is_file():
        pytest.skip(f"reference vectors not found at {path}")
    data: dict[str, Any] = json.loads(path.read_text())
    return data
