"""Column types that keep money, quantities, prices and instants exact on both backends.

SQLite has no decimal type (a NUMERIC column turns ``0.40`` into the float 0.4) and no time
zones, so each type here stores what SQLite can keep exactly and gives back the same Python
value PostgreSQL gives:

* :class:`Scaled` (money to the cent, quantities to the nano-share): ``NUMERIC(18, scale)`` on
  PostgreSQL, an integer count of 10**-scale units on SQLite (exact, and sums and comparisons
  in SQL stay right). A value with more decimals or digits than the column holds is refused,
  never rounded.
* :class:`Exact` (prices, weights, band widths: as many digits as given): ``NUMERIC`` on
  PostgreSQL, the decimal text on SQLite.
* :class:`UtcInstant`: ``TIMESTAMP WITH TIME ZONE`` on PostgreSQL, the UTC wall time on
  SQLite; naive datetimes are refused on the way in, every value comes back timezone-aware UTC.

A type here is part of the schema: changing what a type stores is a new migration and a new
type, never an edit of this one (the migrations import these).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

#: Digits a scaled column holds in all: what fits a signed 64-bit integer on SQLite.
PRECISION = 18


def _finite(value: object, what: str) -> Decimal:
    if not isinstance(value, Decimal):
        raise TypeError(f"{what} takes a Decimal, not {type(value).__name__} {value!r}")
    if not value.is_finite():
        raise ValueError(f"{what} cannot store {value}")
    return value.copy_abs() if value.is_zero() else value


class Scaled(TypeDecorator[Decimal]):
    """A decimal with a fixed number of places (see the module docstring)."""

    impl = sa.Numeric
    cache_ok = True

    def __init__(self, scale: int) -> None:
        super().__init__(PRECISION, scale)
        self.scale = scale
        self._step = Decimal(1).scaleb(-scale)
        self._limit = Decimal(10) ** (PRECISION - scale)

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.Numeric(PRECISION, self.scale, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = _finite(value, f"a column of {self.scale} decimal places")
        fixed = value.quantize(self._step)
        if fixed != value:
            raise ValueError(f"{value} has more than {self.scale} decimal places")
        if abs(fixed) >= self._limit:
            raise ValueError(f"{value} is too large to store ({PRECISION} digits at most)")
        return int(fixed.scaleb(self.scale)) if dialect.name == "sqlite" else fixed

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        shift = -self.scale

        def units(value: Any) -> Decimal | None:  # SQLite's BIGINT has no processor of its own
            return None if value is None else Decimal(int(value)).scaleb(shift)

        return units  # built once per dialect: a read is one call per value, no dispatch

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        """On PostgreSQL (SQLite's values are read by :meth:`result_processor`)."""
        return None if value is None else Decimal(value).quantize(self._step)


class Exact(TypeDecorator[Decimal]):
    """A decimal kept with every digit it was given (see the module docstring)."""

    impl = sa.Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.Text())
        return dialect.type_descriptor(sa.Numeric(asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        text = format(_finite(value, "an exact decimal column"), "f")
        return text if dialect.name == "sqlite" else Decimal(text)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class UtcInstant(TypeDecorator[datetime]):
    """A timezone-aware instant, stored in UTC (see the module docstring)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"an instant column takes a datetime, not {value!r}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{value} has no time zone: store timezone-aware instants")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        instant: datetime = value
        if instant.tzinfo is None:
            return instant.replace(tzinfo=UTC)
        return instant.astimezone(UTC)


#: Money: whole cents.
MONEY = Scaled(2)
#: Share quantities: up to 9 decimals (``rebal.domain.money.QUANTITY_PLACES``; a test holds the
#: two equal, so that a change of one is a migration of the other).
QUANTITY = Scaled(9)
