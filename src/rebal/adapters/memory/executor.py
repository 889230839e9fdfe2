"""The executor that runs everything in the calling thread, in order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class SerialExecutor:
    """A :class:`rebal.ports.executor.Executor` with no parallelism."""

    workers = 1

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """``fn`` of every item, one after the other."""
        return map(fn, items)
