"""What a scheduler tick measures of the stored book: each account's value and whether a band (and
a tiered trigger's wide band) is breached, by the core's drift (the same measure as
``rebal drift``).

:class:`StoreGauge` reads the book of a database store in bulk
(:func:`rebal.adapters.storage.book_frames.read_tables`), of any other store through its records
(:func:`rebal.proposing.arrays_of`), arranges it with :func:`rebal.io.book_arrays.build_book` and
measures it with :func:`rebal.core.engine.propose` (no trades). An account whose investment policy
sets its own bands (or wide bands) is measured against those instead of its model's (the core's
band edges around the same targets).

:class:`StoreSnapshot` is the long-running scheduler's reader (:class:`rebal.services.scheduler.
Reader`): it reads the facts and the book once, keeps them, and at each later tick reads only
what the audit trail says changed since (:func:`rebal.adapters.storage.book_frames.changes`):

* nothing: the facts and the measured drift are those of the last tick (one small query);
* the prices: the kept book is valued at the new prices and its drift measured again, in memory;
* some accounts (their holdings, cash, policy, mark, cash flows, or a run or proposal naming
  them): those accounts' facts and rows are read again (the model versions and prices as
  kept), arranged account by account (:func:`rebal.io.book_arrays.build_few`), measured on a
  book of their own, and replace theirs in the kept arrays (and are read again, with the
  prices, until the next full read);
* anything else (a model version, a new or closed account, a firm, more than
  :data:`OVERLAY_LIMIT` accounts since the last full read): everything is read again, as it
  is every :attr:`StoreSnapshot.full_every` ticks in any case (a change written around the
  repositories, which the audit trail would not show, is seen then).

A store other than a database is read whole at every tick.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from rebal.adapters.storage.book_frames import (
    Changes,
    audit_mark,
    changes,
    read_prices,
    read_tables,
    touched,
)
from rebal.adapters.storage.unit_of_work import SqlStore, SqlUnitOfWork
from rebal.core import triggers as tr
from rebal.core.bands import BandParams, band_edges
from rebal.core.drift import Drift
from rebal.core.engine import RunConfig, propose
from rebal.core.types import any_per_row
from rebal.domain.ids import AccountId
from rebal.io.book_arrays import Book, build_book, build_few, with_prices
from rebal.ports.policies import ScheduleFacts
from rebal.ports.storage import Store
from rebal.proposing import arrays_of
from rebal.services.book import export_book
from rebal.services.scheduler import Fresh, Reading, core_accounts

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def _book(store: Store) -> Book:
    with store.unit_of_work(actor="scheduler", reason="scheduler tick: measure the drift") as uow:
        if isinstance(store, SqlStore):
            return build_book(read_tables(uow))  # type: ignore[arg-type]
        return arrays_of(export_book(uow))


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
    (twice its own band, or the drift's); a wide band never lies inside the band. Only the
    accounts with widths of their own are measured again."""
    breached = np.array(drift.any_breach, dtype=bool)
    wide = np.array(drift.any_wide_breach, dtype=bool)
    own_band = ~np.isnan(band_abs) | ~np.isnan(band_rel)
    own_wide = ~np.isnan(wide_abs) | ~np.isnan(wide_rel)
    own = np.flatnonzero(own_band | own_wide)
    if not len(own):
        return breached, wide
    checked, weight, target = drift.checked[own], drift.weight[own], drift.target[own]
    unset = np.full((len(own), 1), np.nan)

    def edges(widths_abs: FloatArray, widths_rel: FloatArray) -> tuple[FloatArray, FloatArray]:
        params = BandParams(widths_abs[:, None], widths_rel[:, None], unset, unset, unset, unset)
        found = band_edges(target, params)
        return found.band_low, found.band_high

    def outside(low: FloatArray, high: FloatArray) -> BoolArray:
        result: BoolArray = any_per_row(checked & ((weight < low) | (weight > high)))
        return result

    by_band, by_wide = own_band[own], own_wide[own]
    band_low, band_high = edges(band_abs[own], band_rel[own])
    band_low = np.where(by_band[:, None], band_low, drift.edges.band_low[own])
    band_high = np.where(by_band[:, None], band_high, drift.edges.band_high[own])
    breached[own] = np.where(
        by_band, outside(band_low, band_high) | drift.cash_breach[own], breached[own]
    )
    wide_low, wide_high = edges(
        np.where(by_wide, wide_abs[own], band_abs[own] * 2),
        np.where(by_wide, wide_rel[own], band_rel[own] * 2),
    )
    wide[own] = outside(np.minimum(wide_low, band_low), np.maximum(wide_high, band_high))
    return breached, wide


def measure(
    book: Book,
    accounts: Sequence[str] | npt.NDArray[np.object_],
    band_abs: FloatArray,
    band_rel: FloatArray,
    wide_abs: FloatArray,
    wide_rel: FloatArray,
    config: RunConfig,
    row: npt.NDArray[np.intp] | None = None,
) -> tuple[FloatArray, BoolArray, BoolArray]:
    """The value, band breach and wide-band breach of each of ``accounts`` (in that order) in
    ``book``, with their own bands and wide bands where given: 0 and no breach for an account
    the book does not hold. ``row``: the book row of each account (-1: not held), when known
    already."""
    none = np.zeros(len(accounts), dtype=bool)
    if book.arrays.n_accounts == 0:
        return np.zeros(len(accounts)), none, none
    drift = propose(book.arrays, config).drift
    if row is None:
        row = rows_of(book, accounts)
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


def measure_facts(
    book: Book, facts: ScheduleFacts, config: RunConfig, row: npt.NDArray[np.intp] | None = None
) -> tuple[FloatArray, BoolArray, BoolArray]:
    """:func:`measure` of the facts' accounts with their policies' bands and wide bands."""
    return measure(
        book,
        list(facts.account),
        facts.band_abs,
        facts.band_rel,
        facts.wide_band_abs,
        facts.wide_band_rel,
        config,
        row,
    )


def rows_of(book: Book, accounts: Sequence[str] | npt.NDArray[np.object_]) -> npt.NDArray[np.intp]:
    """The book row of each of ``accounts``, -1 where the book does not hold it."""
    row: npt.NDArray[np.intp] = pd.Index(book.accounts["account"]).get_indexer(
        pd.Index(list(accounts))
    )
    return row


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
        return measure(_book(store), accounts, band_abs, band_rel, wide_abs, wide_rel, self.config)


#: Past this many accounts read again since the last full read, a snapshot reads everything.
OVERLAY_LIMIT = 2_000

_Columns = TypeVar("_Columns", ScheduleFacts, tr.Accounts)


def _merged(whole: _Columns, at: npt.NDArray[np.intp], part: _Columns) -> _Columns:
    """``whole`` with the elements at ``at`` replaced by ``part``'s (copies: a reading given
    out is never changed)."""
    changed: dict[str, Any] = {}
    for f in fields(whole):
        column = getattr(whole, f.name).copy()
        column[at] = getattr(part, f.name)
        changed[f.name] = column
    return replace(whole, **changed)


@dataclass(frozen=True, slots=True)
class _Kept:
    """What a snapshot keeps between ticks."""

    database: object  # the store's URL: the same database, even through another engine
    firm: str
    seen: Changes  # the audit trail read up to ``seen.seq`` (with its gaps)
    facts: ScheduleFacts
    accounts: tr.Accounts  # the core's arrays, the drift measured
    row: pd.Index  # the accounts' ids, in book order
    book: Book  # the whole book as last read in full, at the current prices
    models: pd.DataFrame  # the model versions' frame as last read in full
    prices: pd.DataFrame  # the current prices' frame
    book_row: npt.NDArray[np.intp]  # the book row of each account
    changed: frozenset[str]  # accounts read again since: ``book`` is stale for them
    overlay: Book | None  # the book of ``changed``, at the current prices
    overlay_at: npt.NDArray[np.intp]  # the position of each of the overlay's accounts
    ticks: int  # ticks since the last full read


class StoreSnapshot:
    """A :class:`~rebal.services.scheduler.Reader` that keeps what it read between ticks and
    reads again what changed (see the module docstring). ``last`` says what the last tick
    read: ``full``, ``unchanged`` or ``changed``."""

    def __init__(self, config: RunConfig | None = None, *, full_every: int = 60) -> None:
        self.config = config or RunConfig(trade=False)
        self.full_every = full_every
        self.last: Literal["full", "unchanged", "changed"] | None = None
        self._kept: _Kept | None = None

    def __call__(self, store: Store, *, actor: str) -> Reading:
        if not isinstance(store, SqlStore):
            self.last = "full"
            return Fresh(StoreGauge(self.config))(store, actor=actor)
        with store.unit_of_work(actor=actor, reason="scheduler tick: read what changed") as uow:
            kept = self._kept
            fresh = (
                kept is None
                or kept.database != store.engine.url
                or kept.firm != uow.firm
                or kept.ticks + 1 >= self.full_every
            )
            refreshed = None if fresh or kept is None else self._refresh(uow, kept)
            if refreshed is None:
                refreshed = self._load(uow, store)
        self._kept = refreshed
        return Reading(facts=refreshed.facts, accounts=refreshed.accounts)

    def _load(self, uow: SqlUnitOfWork, store: SqlStore) -> _Kept:
        """Everything read again (the audit trail's mark first: a change committed while the
        rest is read is read again at the next tick, never missed)."""
        seen = Changes(entries=(), seq=audit_mark(uow), gaps={})
        facts = uow.policies.schedule_facts()
        tables = read_tables(uow)
        book = build_book(tables)
        book_row = rows_of(book, list(facts.account))
        value, breached, wide = measure_facts(book, facts, self.config, book_row)
        self.last = "full"
        return _Kept(
            database=store.engine.url,
            firm=uow.firm,
            seen=seen,
            facts=facts,
            accounts=core_accounts(facts, value, breached, wide),
            row=pd.Index(facts.account, dtype=object),
            book=book,
            models=tables.models,
            prices=tables.prices,
            book_row=book_row,
            changed=frozenset(),
            overlay=None,
            overlay_at=np.zeros(0, dtype=np.intp),
            ticks=0,
        )

    def _refresh(self, uow: SqlUnitOfWork, kept: _Kept) -> _Kept | None:
        """``kept`` brought up to date with what changed since; ``None`` when everything must
        be read again."""
        seen = changes(uow, kept.seen.seq, kept.seen.gaps)
        if not seen.complete:
            return None
        later = replace(kept, seen=seen, ticks=kept.ticks + 1)
        what = touched(uow, seen.entries) if seen.entries else None
        if not seen.entries or (what is not None and not what.accounts and not what.prices):
            self.last = "unchanged"
            return later
        if what is None or (kept.row.get_indexer(pd.Index(list(what.accounts))) < 0).any():
            return None
        changed = kept.changed | what.accounts
        if len(changed) > OVERLAY_LIMIT:
            return None
        facts, accounts, book, prices = kept.facts, kept.accounts, kept.book, kept.prices
        overlay, at = kept.overlay, kept.overlay_at
        if what.prices:
            prices = read_prices(uow)
            book = with_prices(book, prices)
            overlay = None if overlay is None else with_prices(overlay, prices)
            value, breached, wide = measure_facts(book, facts, self.config, kept.book_row)
            accounts = replace(accounts, value=value, breached=breached, wide_breached=wide)
        if what.accounts:
            part = uow.policies.schedule_facts(changed)
            at = kept.row.get_indexer(pd.Index(part.account))
            if len(part) != len(changed) or (at < 0).any():  # an account closed
                return None
            overlay = build_few(read_tables(uow, changed, models=kept.models, prices=prices))
            value, breached, wide = measure_facts(overlay, part, self.config)
            facts = _merged(facts, at, part)
            accounts = _merged(accounts, at, core_accounts(part, value, breached, wide))
        elif overlay is not None:  # the prices only: the accounts read again, measured again
            value, breached, wide = measure(
                overlay,
                list(facts.account[at]),
                facts.band_abs[at],
                facts.band_rel[at],
                facts.wide_band_abs[at],
                facts.wide_band_rel[at],
                self.config,
            )
            accounts.value[at], accounts.breached[at] = value, breached
            accounts.wide_breached[at] = wide
        self.last = "changed"
        return replace(
            later,
            facts=facts,
            accounts=accounts,
            book=book,
            prices=prices,
            changed=changed,
            overlay=overlay,
            overlay_at=at,
        )
