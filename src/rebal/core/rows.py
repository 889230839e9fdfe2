"""Row-wise slicing and stacking of the core's dataclasses of arrays.

Every core record (a book, its drift, its orders) holds arrays whose first axis is the account.
Taking a subset of accounts, or stacking the results of several chunks of a book, is the same
operation on every field; these two functions do it once for all of them. 0-d arrays (run-level
values that broadcast) and ``None`` fields pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, is_dataclass, replace
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


def take_rows(record: T, rows: Any) -> T:
    """Return ``record`` with every array field restricted to ``rows`` (an index or a slice)."""

    def take(value: Any) -> Any:
        if value is None:
            return None
        if is_dataclass(value):
            return take_rows(value, rows)
        if isinstance(value, np.ndarray) and value.ndim > 0:
            return value[rows]
        return value

    assert is_dataclass(record) and not isinstance(record, type)
    return replace(record, **{f.name: take(getattr(record, f.name)) for f in fields(record)})


def concat_rows(records: Sequence[T]) -> T:
    """Return one record whose arrays stack the arrays of ``records`` along the first axis."""

    def stack(values: list[Any]) -> Any:
        first = values[0]
        if first is None:
            return None
        if is_dataclass(first):
            return concat_rows(values)
        if isinstance(first, np.ndarray) and first.ndim > 0:
            return np.concatenate(values)
        return first

    head = records[0]
    assert is_dataclass(head) and not isinstance(head, type)
    return replace(
        head, **{f.name: stack([getattr(r, f.name) for r in records]) for f in fields(head)}
    )
