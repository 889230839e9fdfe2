"""An executor over a pool of threads, one per processor of this machine.

The core's compiled loops release the GIL, so a book split into chunks that write disjoint rows
runs on every core from threads. The pool is started per ``map`` call and gone once its
results are read, so an idle process holds no threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class ThreadExecutor:
    """A :class:`rebal.ports.executor.Executor` running the items on up to ``workers`` threads
    (the machine's processor count when not given)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """``fn`` of every item, in the items' order, computed on the pool's threads."""
        work = list(items)
        if self.workers < 2 or len(work) < 2:
            yield from map(fn, work)
            return
        with ThreadPoolExecutor(max_workers=min(self.workers, len(work))) as pool:
            yield from pool.map(fn, work)
