"""Array aliases shared by the core: everything is (accounts, slots) or (accounts,)."""

from typing import TypeAlias, cast

import numpy as np
import numpy.typing as npt

FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.int64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]


def any_per_row(mask: BoolArray) -> BoolArray:
    """Rows of a (N, K) mask with at least one True, as an (N,) array."""
    return cast(BoolArray, mask.any(axis=1))
