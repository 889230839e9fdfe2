"""Hypothesis profiles: ``dev`` (the default) draws new examples on every run, to find what no
one thought of; ``ci`` (``HYPOTHESIS_PROFILE=ci``, set by ``.ci/run``) draws the same examples
every run, so a landing is judged on the code, not on the luck of the draw."""

from __future__ import annotations

import os

from hypothesis import settings

import rebal.versioned_cache  # noqa: F401 - first: numba's cache for this source version

settings.register_profile("dev", print_blob=True)
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


# -- databases: every storage test runs on SQLite and on PostgreSQL --------------------------
#
# PostgreSQL is the production store; the tests reach it at REBAL_TEST_POSTGRES (default: the
# server on 127.0.0.1:5432, trust auth, database ``test``). Each test gets a schema of its own,
# dropped afterwards. Without a reachable server the PostgreSQL cases are skipped with the
# reason, unless REBAL_REQUIRE_POSTGRES=1 (set by .ci/run), which makes them fail instead.

import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

POSTGRES = os.environ.get("REBAL_TEST_POSTGRES", "postgresql+psycopg://127.0.0.1:5432/test")


def _postgres_schema() -> Iterator[str]:
    import psycopg

    plain = POSTGRES.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        admin = psycopg.connect(plain, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("REBAL_REQUIRE_POSTGRES") == "1":
            raise
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES}: {exc}")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _fresh_database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'rebal.db'}"
    else:
        yield from _postgres_schema()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema of this test's own."""
    yield from _fresh_database(request.param, tmp_path)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """``None`` for the in-memory store, else a fresh database as ``database_url`` gives one:
    the contract tests of the storage port run on every implementation of it."""
    if request.param == "memory":
        yield None
    else:
        yield from _fresh_database(request.param, tmp_path)
