"""The executor port: where independent pieces of work run (one thread, several, or a Dask
cluster). The core never starts threads; an entry point passes the executor in."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    """Runs a function over items, giving the results in the items' order."""

    #: How many items it runs at once (a caller splits its work into at least that many).
    workers: int

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """``fn`` of every item, in order; results may be computed in parallel."""
        ...
