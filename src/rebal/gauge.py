"""What a scheduler tick measures of the stored book: each account's value and whether a band (and
a tiered trigger's wide band) is breached, by the core's drift (the same measure as
``rebal drift``).

:class:`StoreGauge` reads the book of a database store in bulk
(:func:`rebal.adapters.storage.book_frames.read_tables`), of any other store through its records
(:func:`rebal.proposing.arrays_of`), arranges it with :func:`rebal.io.book_arrays.build_book` and
measures it with :func:`rebal.core.engine.propose` (no trades). An account whose investment policy
sets its own bands (or wide bands) is measured against those instead of its model's (the core's
band edges around the same targets).
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


def _outside(drift: Drift, low: FloatArray, high: FloatArray) -> BoolArray:
    """Per account, whether a checked slot's weight lies outside ``low`` to ``high``."""
    result: BoolArray = any_per_row(drift.checked & ((drift.weight < low) | (drift.weight > high)))
    return result


def _edges(drift: Drift, widths_abs: FloatArray, widths_rel: FloatArray) -> tuple[FloatArray, ...]:
    """The edges around each slot's target of each account's (absolute, relative) widths."""
    unset = np.full((len(widths_abs), 1), np.nan)
    params = BandParams(widths_abs[:, None], widths_rel[:, None], unset, unset, unset, unset)
    edges = band_edges(drift.target, params)
    return edges.band_low, edges.band_high


def breaches(
    drift: Drift,
    band_abs: FloatArray,
    band_rel: FloatArray,
    wide_abs: FloatArray,
    wide_rel: FloatArray,
) -> tuple[BoolArray, BoolArray]:
    """Per account, whether a band is breached and whether a wide band is (the tiered
    trigger's), with the account's own widths where given (per account, NaN where not set) and
    the drift's elsewhere. An account's own wide band replaces both kinds of the derived one
    (twice its own band, or the drift's); a wide band never lies inside the band."""
    breached = np.asarray(drift.any_breach, dtype=bool)
    wide = np.asarray(drift.any_wide_breach, dtype=bool)
    own_band = ~np.isnan(band_abs) | ~np.isnan(band_rel)
    own_wide = ~np.isnan(wide_abs) | ~np.isnan(wide_rel)
    if not (own_band | own_wide).any():
        return breached, wide
    band_low, band_high = _edges(drift, band_abs, band_rel)
    band_low = np.where(own_band[:, None], band_low, drift.edges.band_low)
    band_high = np.where(own_band[:, None], band_high, drift.edges.band_high)
    breached = np.where(
        own_band, _outside(drift, band_low, band_high) | drift.cash_breach, breached
    )
    wide_low, wide_high = _edges(
        drift,
        np.where(own_wide, wide_abs, band_abs * 2),
        np.where(own_wide, wide_rel, band_rel * 2),
    )
    outside_wide = _outside(drift, np.minimum(wide_low, band_low), np.maximum(wide_high, band_high))
    wide = np.where(own_band | own_wide, outside_wide, wide)
    return breached, wide


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
        wide_abs: FloatArray,
        wide_rel: FloatArray,
    ) -> tuple[FloatArray, BoolArray, BoolArray]:
        """The value, breach and wide-band breach of each of ``accounts`` (in that order): 0
        and no breach for an account the book does not hold (it closed in between)."""
        book = _book(store)
        none = np.zeros(len(accounts), dtype=bool)
        if book.arrays.n_accounts == 0:
            return np.zeros(len(accounts)), none, none
        drift = propose(book.arrays, self.config).drift
        row = pd.Index(book.accounts["account"]).get_indexer(list(accounts))
        found = row >= 0
        at = np.where(found, row, 0)

        def of_book(given: FloatArray) -> FloatArray:
            out = np.full(book.arrays.n_accounts, np.nan)
            out[at[found]] = given[found]
            return out

        breached, wide = breaches(
            drift, of_book(band_abs), of_book(band_rel), of_book(wide_abs), of_book(wide_rel)
        )
        value = np.nan_to_num(np.asarray(drift.total, dtype=np.float64))
        return (
            np.where(found, value[at], 0.0),
            np.where(found, breached[at], False),
            np.where(found, wide[at], False),
        )
