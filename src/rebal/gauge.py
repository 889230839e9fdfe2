"""What a scheduler tick measures of the stored book: each account's value and whether a band is
breached, by the core's drift (the same measure as ``rebal drift``).

:class:`StoreGauge` reads the book of a database store in bulk
(:func:`rebal.adapters.storage.book_frames.read_tables`), of any other store through its records
(:func:`rebal.proposing.arrays_of`), arranges it with :func:`rebal.io.book_arrays.build_book` and
measures it with :func:`rebal.core.engine.propose` (no trades). An account whose investment policy
sets its own bands is measured against those instead of its model's (the core's band edges around
the same targets).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from rebal.adapters.storage.book_frames import read_tables
from rebal.adapters.storage.unit_of_work import SqlStore
from rebal.core.bands import BandParams, band_edges
from rebal.core.drift import Drift
from rebal.core.engine import RunConfig, propose
from rebal.core.types import any_per_row
from rebal.domain.ids import AccountId
from rebal.io.book_arrays import Book, build_book
from rebal.ports.storage import Store
from rebal.proposing import arrays_of
from rebal.services.book import export_book

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def _book(store: Store) -> Book:
    with store.unit_of_work(actor="scheduler", reason="scheduler tick: measure the drift") as uow:
        if isinstance(store, SqlStore):
            return build_book(read_tables(uow))  # type: ignore[arg-type]
        return arrays_of(export_book(uow))


def breaches(drift: Drift, band_abs: FloatArray, band_rel: FloatArray) -> BoolArray:
    """Per account, whether a band is breached, with the account's own widths where given
    (``band_abs`` / ``band_rel`` per account, NaN where not set) and the drift's elsewhere."""
    breached = np.asarray(drift.any_breach, dtype=bool)
    own = ~np.isnan(band_abs) | ~np.isnan(band_rel)
    if not own.any():
        return breached
    unset = np.full((len(band_abs), 1), np.nan)
    params = BandParams(band_abs[:, None], band_rel[:, None], unset, unset, unset, unset)
    edges = band_edges(drift.target, params)
    outside = drift.checked & ((drift.weight < edges.band_low) | (drift.weight > edges.band_high))
    result: BoolArray = np.where(own, any_per_row(outside) | drift.cash_breach, breached)
    return result


class StoreGauge:
    """Measures a store's book for a tick (see the module docstring)."""

    def __init__(self, config: RunConfig | None = None) -> None:
        self.config = config or RunConfig(trade=False)

    def __call__(
        self,
        store: Store,
        accounts: Sequence[AccountId],
        band_abs: FloatArray,
        band_rel: FloatArray,
    ) -> tuple[FloatArray, BoolArray]:
        """The value and breach of each of ``accounts`` (in that order): 0 and no breach for an
        account the book does not hold (it closed in between)."""
        book = _book(store)
        if book.arrays.n_accounts == 0:
            return np.zeros(len(accounts)), np.zeros(len(accounts), dtype=bool)
        drift = propose(book.arrays, self.config).drift
        row = pd.Index(book.accounts["account"]).get_indexer(list(accounts))
        found = row >= 0
        at = np.where(found, row, 0)
        abs_of = np.full(book.arrays.n_accounts, np.nan)
        rel_of = np.full(book.arrays.n_accounts, np.nan)
        abs_of[at[found]], rel_of[at[found]] = band_abs[found], band_rel[found]
        breached = breaches(drift, abs_of, rel_of)
        value = np.nan_to_num(np.asarray(drift.total, dtype=np.float64))
        return np.where(found, value[at], 0.0), np.where(found, breached[at], False)
