"""Array aliases shared by the core: everything is (accounts, slots) or (accounts,)."""

from typing import Any, TypeAlias, TypeVar, cast

import numpy as np
import numpy.typing as npt

FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.int64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]


def any_per_row(mask: BoolArray) -> BoolArray:
    """Rows of a (N, K) mask with at least one True, as an (N,) array."""
    return cast(BoolArray, mask.any(axis=1))


_A = TypeVar("_A", FloatArray, BoolArray)


def dense(array: _A, shape: tuple[int, ...] | None = None) -> _A:
    """``array`` broadcast to ``shape`` (if given) and C-contiguous: what a kernel takes."""
    full = array if shape is None else np.broadcast_to(array, shape)
    return cast(_A, np.ascontiguousarray(full))


def dense_as(
    array: npt.ArrayLike, dtype: type[np.generic], shape: tuple[int, ...]
) -> npt.NDArray[Any]:
    """``array`` as ``dtype``, broadcast to ``shape`` and C-contiguous: one kernel signature."""
    full = np.broadcast_to(np.asarray(array, dtype=dtype), shape)
    return np.ascontiguousarray(full)
