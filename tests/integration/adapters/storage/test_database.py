"""Which database a command uses, and the column types that keep money, quantities, prices and
instants exact on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from rebal.adapters.memory.clock import SimulatedClock
from rebal.adapters.storage import database
from rebal.adapters.storage.database import DEFAULT_URL, create_engine, parse_url, resolve_url
from rebal.adapters.storage.types import MONEY, QUANTITY, Exact, UtcInstant
from rebal.adapters.storage.unit_of_work import SqlStore
from rebal.domain.money import QUANTITY_PLACES
from rebal.ports.storage import StoreUnavailable


def test_the_db_option_beats_the_environment_which_beats_the_default() -> None:
    env = {"REBAL_DB": "postgresql://db.example/book"}
    assert resolve_url("sqlite:///mine.db", env) == "sqlite:///mine.db"
    assert resolve_url(None, env) == "postgresql://db.example/book"
    assert resolve_url(None, {}) == DEFAULT_URL == "sqlite:///rebal.db"


def test_a_plain_postgresql_url_means_psycopg_3() -> None:
    assert parse_url("postgresql://u:secret@h:5433/book").drivername == "postgresql+psycopg"
    assert parse_url("postgresql+psycopg://h/book").drivername == "postgresql+psycopg"
    assert parse_url("sqlite:///rebal.db").drivername == "sqlite"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://h/book", "unsupported database 'mysql'"),
        ("postgresql+psycopg2://h/book", "unsupported database"),
        ("sqlite://", "names no file"),
        ("sqlite:///:memory:", "names no file"),
        ("not a url", "is not a database URL"),
    ],
)
def test_an_unusable_url_is_refused_with_what_to_give(url: str, message: str) -> None:
    with pytest.raises(StoreUnavailable, match=message):
        parse_url(url)


def test_a_password_is_never_shown() -> None:
    with pytest.raises(StoreUnavailable) as refused:
        parse_url("mysql://user:hunter2@h/book")
    assert "hunter2" not in str(refused.value)


def test_the_quantity_column_keeps_the_places_the_domain_allows() -> None:
    assert QUANTITY.scale == QUANTITY_PLACES


_values = sa.Table(
    "probe",
    sa.MetaData(),
    sa.Column("money", MONEY),
    sa.Column("quantity", QUANTITY),
    sa.Column("price", Exact),
    sa.Column("at", UtcInstant),
)


@pytest.fixture
def probe(database_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(database_url)
    _values.metadata.create_all(engine)
    yield engine
    engine.dispose()


def _round_trip(engine: sa.Engine, **row: object) -> sa.Row[tuple[object, ...]]:
    with engine.begin() as connection:
        connection.execute(sa.delete(_values))
        connection.execute(sa.insert(_values).values(**row))
        return connection.execute(sa.select(_values)).one()


def test_decimals_and_instants_come_back_exact_and_in_utc(probe: sa.Engine) -> None:
    at = datetime(2026, 3, 8, 6, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5)))
    row = _round_trip(
        probe,
        money=Decimal("-12345678901234.56"),
        quantity=Decimal("123456789.123456789"),
        price=Decimal("0.000000000000000000012345"),
        at=at,
    )
    assert row.money == Decimal("-12345678901234.56")
    assert row.quantity == Decimal("123456789.123456789")
    assert format(row.price, "f") == "0.000000000000000000012345"
    assert row.at == at and row.at.tzinfo is UTC
    assert str(_round_trip(probe, money=Decimal(5)).money) == "5.00"  # whole cents, always


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("money", Decimal("1.005"), "more than 2 decimal places"),
        ("quantity", Decimal("1.0000000001"), "more than 9 decimal places"),
        ("money", Decimal("1E+16"), "too large"),
        ("price", Decimal("NaN"), "cannot store"),
        ("money", 1.5, "takes a Decimal"),
        ("at", datetime(2026, 1, 1), "no time zone"),
    ],
)
def test_a_value_the_column_cannot_keep_exactly_is_refused(
    probe: sa.Engine, column: str, value: object, message: str
) -> None:
    with pytest.raises(sa.exc.StatementError, match=message):
        _round_trip(probe, **{column: value})


def test_a_sqlite_writer_kept_waiting_past_the_timeout_is_told_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "BUSY_TIMEOUT", 0.2)
    engine = create_engine(f"sqlite:///{tmp_path / 'rebal.db'}")
    try:
        store = SqlStore(engine, SimulatedClock(datetime(2026, 1, 1, tzinfo=UTC)))
        with store.unit_of_work(actor="one", reason="holds the write lock"):
            second = store.unit_of_work(actor="two", reason="waits")
            with pytest.raises(StoreUnavailable, match="database is locked"), second:
                pass
    finally:
        engine.dispose()
