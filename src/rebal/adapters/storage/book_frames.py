"""The stored book as the core's validated tables, read in bulk for a scheduler tick.

A tick measures the drift of every account once a minute. Reading the book as domain records
(:func:`rebal.services.book.export_book`) and validating it again as text costs seconds per
hundred thousand accounts; this reads the same rows straight into the frames of
:class:`rebal.io.tables.Tables` (what :func:`rebal.io.book_arrays.build_book` arranges for the
core): a few statements, each fetched whole through the driver's cursor, money and quantities taken
as integers of cents and nano-shares by the database itself. The values were validated when they
were imported or recorded, so nothing is checked again; the drift it feeds is in floats, as
``rebal drift`` measures it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from rebal.adapters.storage import tables as t
from rebal.adapters.storage.policies import among, fetch_rows
from rebal.adapters.storage.unit_of_work import SqlUnitOfWork
from rebal.domain.audit import Entity
from rebal.domain.cash import CashFlowState
from rebal.io.tables import Tables

_LIMITS = ("band_abs", "band_rel", "rail_abs", "rail_rel")


def _units(uow: SqlUnitOfWork, column: sa.ColumnElement[Any], places: int, stored: int) -> Any:
    """``column`` (a scaled decimal stored with ``stored`` places) as an integer count of
    10**-places units, computed by the database: SQLite keeps the integer already, PostgreSQL
    a numeric."""
    if uow.dialect == "sqlite":
        raw = sa.type_coerce(column, sa.BigInteger)
        return raw if stored == places else sa.cast(raw / 10 ** (stored - places), sa.BigInteger)
    return sa.cast(sa.func.floor(sa.type_coerce(column, sa.Numeric) * 10**places), sa.BigInteger)


def _restricted(ids: pd.Index, banned: dict[str, set[str]]) -> np.ndarray:
    """Each account's restricted symbols as a sorted tuple (most have none)."""
    restricted = np.empty(len(ids), dtype=object)
    restricted[:] = [()] * len(ids)
    if banned:
        position = {account: i for i, account in enumerate(ids)}
        for account, symbols in banned.items():
            if account in position:
                restricted[position[account]] = tuple(sorted(symbols))
    return restricted


def read_tables(
    uow: SqlUnitOfWork,
    only: Collection[str] | None = None,
    *,
    models: pd.DataFrame | None = None,
    prices: pd.DataFrame | None = None,
) -> Tables:
    """The store's book (open accounts, latest model versions, current prices) as the
    :class:`~rebal.io.tables.Tables` the core's book is built from, in book order; with
    ``only``, only those of these accounts that are open (what changed, for a tick's snapshot).
    ``models`` and ``prices``: the frames of :func:`read_models` and :func:`read_prices` when
    already read (a snapshot keeps them: the changed accounts' rows alone are read again)."""
    a, h, f, r = t.accounts, t.holdings, t.cash_flows, t.account_restrictions
    open_ = sa.and_(a.c.firm_id == uow.firm, a.c.closed_at.is_(None), *among(a.c.id, only))
    accounts = fetch_rows(
        uow,
        sa.select(
            a.c.id,
            a.c.model_id,
            _units(uow, a.c.cash, 2, 2),
            a.c.type,
            a.c.household,
            a.c.can_trade,
            a.c.liquidate,
        )
        .where(open_)
        .order_by(a.c.ordinal),
    )
    columns = ("account", "model", "cash_cents", "type", "household", "can_trade", "liquidate")
    frame = pd.DataFrame.from_records(accounts, columns=columns).astype(
        {"account": object, "type": object}
    )
    ids = pd.Index(frame["account"], dtype=object)
    pending = dict(
        fetch_rows(
            uow,
            sa.select(f.c.account_id, sa.func.sum(_units(uow, f.c.amount, 2, 2)))
            .where(
                f.c.firm_id == uow.firm,
                f.c.state == CashFlowState.PENDING.value,
                *among(f.c.account_id, only),
            )
            .group_by(f.c.account_id),
        )
    )
    banned: dict[str, set[str]] = defaultdict(set)
    for account, symbol in fetch_rows(
        uow,
        sa.select(r.c.account_id, r.c.symbol).where(
            r.c.firm_id == uow.firm, *among(r.c.account_id, only)
        ),
    ):
        banned[account].add(symbol)
    frame = frame.assign(
        model=frame["model"].fillna("").astype(object),
        household=frame["household"].fillna("").astype(object),
        cash_cents=frame["cash_cents"].astype(np.int64),
        can_trade=frame["can_trade"].astype(bool),
        liquidate=frame["liquidate"].astype(bool),
        restricted=_restricted(ids, banned),
        pending_cents=pd.Series(pending, dtype=object)
        .reindex(ids)
        .fillna(0)
        .to_numpy(dtype=np.int64),
    )[
        [
            "account",
            "model",
            "cash_cents",
            "type",
            "household",
            "can_trade",
            "restricted",
            "pending_cents",
            "liquidate",
        ]
    ]
    # in the store's order (a closed account holds nothing): the drift sums each account's
    # rows of a symbol, so their order does not matter, and no sort is paid for
    held = fetch_rows(
        uow,
        sa.select(h.c.account_id, h.c.symbol, _units(uow, h.c.quantity, 9, 9)).where(
            h.c.firm_id == uow.firm, *among(h.c.account_id, only)
        ),
    )
    holdings = pd.DataFrame.from_records(held, columns=["account", "symbol", "nano"]).astype(
        {"account": object, "symbol": object}
    )
    holdings = holdings[ids.get_indexer(holdings["account"]) >= 0]
    nano = holdings.pop("nano").to_numpy(dtype=np.int64)
    holdings["quantity_micro"], holdings["quantity_rest_nano"] = nano // 1000, nano % 1000
    return Tables(
        models=read_models(uow) if models is None else models,
        accounts=frame.reset_index(drop=True),
        holdings=holdings,
        prices=read_prices(uow) if prices is None else prices,
    )


def read_models(uow: SqlUnitOfWork) -> pd.DataFrame:
    """The latest model versions as the frame of :attr:`rebal.io.tables.Tables.models`."""
    rows = [
        {
            "model": v.model,
            "symbol": target.symbol,
            "weight": float(target.weight),
            **{
                c: np.nan if getattr(target, c) is None else float(getattr(target, c))
                for c in _LIMITS
            },
            "weight_exact": target.weight,
            **{f"{c}_exact": getattr(target, c) for c in _LIMITS},
        }
        for v in uow.models.current()
        for target in v.targets
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "model",
            "symbol",
            "weight",
            *_LIMITS,
            "weight_exact",
            *(f"{c}_exact" for c in _LIMITS),
        ],
    )


def read_prices(uow: SqlUnitOfWork) -> pd.DataFrame:
    """The current prices as the frame of :attr:`rebal.io.tables.Tables.prices`."""
    prices = [
        {
            "symbol": p.symbol,
            "price": float(p.price),
            "price_text": format(p.price, "f"),
            "price_exact": p.price,
        }
        for p in uow.prices.current()
    ]
    return pd.DataFrame(prices, columns=["symbol", "price", "price_text", "price_exact"])


#: How many ticks a gap in the audit trail's sequence is looked at again (see :func:`changes`).
GAP_TICKS = 30
#: Beyond this many gaps at once, :func:`changes` gives up on them (the caller reads all again).
MAX_GAPS = 10_000


@dataclass(frozen=True, slots=True)
class Changes:
    """What the audit trail recorded since a tick's snapshot: ``(entity, key)`` of each change,
    the last sequence number seen, and the gaps below it still to look at (sequence number ->
    ticks waited); ``complete`` is false when there were too many gaps to follow."""

    entries: tuple[tuple[str, str], ...]
    seq: int
    gaps: Mapping[int, int]
    complete: bool = True


def audit_mark(uow: SqlUnitOfWork) -> int:
    """The audit trail's last sequence number (0 when empty): where :func:`changes` starts."""
    a = t.audit_log
    rows = fetch_rows(uow, sa.select(sa.func.coalesce(sa.func.max(a.c.seq), 0)))
    return int(rows[0][0])


def changes(uow: SqlUnitOfWork, seq: int, gaps: Mapping[int, int]) -> Changes:
    """The firm's audit entries after ``seq`` and in ``gaps``.

    Every change a repository makes is in the audit trail, written in its transaction, so these
    are what changed since ``seq`` was read. On PostgreSQL a sequence number is taken when a
    transaction writes, not when it commits: one still running when ``seq`` was read commits
    later below it. A number missing below the last one seen is therefore a gap, looked at
    again for :data:`GAP_TICKS` ticks (a rolled-back transaction's numbers never appear).
    """
    a = t.audit_log
    waiting = sorted(gaps)
    rows = fetch_rows(
        uow,
        sa.select(a.c.seq, a.c.firm_id, a.c.entity, a.c.key)
        .where(sa.or_(a.c.seq > seq, *among(a.c.seq, waiting if waiting else None)))
        .order_by(a.c.seq),
    )
    seen = {int(row[0]) for row in rows}
    last = max(seen | {seq})
    later = {s: gaps[s] + 1 for s in waiting if s not in seen and gaps[s] + 1 < GAP_TICKS}
    missing = last - seq - sum(1 for s in seen if s > seq)
    if missing + len(later) > MAX_GAPS:
        return Changes(entries=(), seq=last, gaps={}, complete=False)
    entries = tuple((str(row[2]), str(row[3])) for row in rows if row[1] == uow.firm)
    fresh = set(range(seq + 1, last + 1)) - seen
    return Changes(entries=entries, seq=last, gaps=later | dict.fromkeys(fresh, 0))


#: Records no tick reads (orders, fills and realised lots change an account's holdings and cash
#: through those records' own changes).
_UNREAD = frozenset({Entity.ORDER, Entity.FILL, Entity.REALISED})
#: Records keyed by the account they belong to.
_OF_ACCOUNT = frozenset({Entity.ACCOUNT, Entity.HOLDINGS, Entity.POLICY, Entity.SCHEDULE})
#: The records whose changes a snapshot follows (any other: everything is read again).
_READ = frozenset(
    _UNREAD | _OF_ACCOUNT | {Entity.PRICES, Entity.CASH_FLOW, Entity.RUN, Entity.PROPOSAL}
)


@dataclass(frozen=True, slots=True)
class Touched:
    """What a tick's snapshot must read again: these accounts' rows, and the prices."""

    accounts: frozenset[str]
    prices: bool


def touched(uow: SqlUnitOfWork, entries: Collection[tuple[str, str]]) -> Touched | None:
    """The accounts whose facts or book rows ``entries`` (of :func:`changes`) changed, and
    whether the prices did; ``None`` for a change that is not one account's (a model version, a
    firm, a record of an unknown kind): everything is read again."""
    keys: dict[Entity, set[str]] = defaultdict(set)
    for entity, key in entries:
        if entity not in _READ:
            return None
        keys[Entity(entity)].add(key)
    accounts = set().union(*(keys[e] for e in _OF_ACCOUNT))
    c, r, a = t.cash_flows, t.runs, t.proposal_accounts
    queries = [
        # a deposit or withdrawal: its account
        sa.select(c.c.account_id).where(
            c.c.firm_id == uow.firm, *among(c.c.id, keys[Entity.CASH_FLOW])
        ),
        # a run (started, or ended: its last rebalance) or a proposal: the accounts it names
        sa.select(a.c.account_id)
        .join(r, sa.and_(r.c.firm_id == a.c.firm_id, r.c.proposal_id == a.c.proposal_id))
        .where(a.c.firm_id == uow.firm, *among(r.c.id, keys[Entity.RUN])),
        sa.select(a.c.account_id).where(
            a.c.firm_id == uow.firm, *among(a.c.proposal_id, keys[Entity.PROPOSAL])
        ),
    ]
    for query, entity in zip(queries, (Entity.CASH_FLOW, Entity.RUN, Entity.PROPOSAL), strict=True):
        if keys[entity]:
            accounts.update(str(row[0]) for row in fetch_rows(uow, query))
    return Touched(accounts=frozenset(accounts), prices=bool(keys[Entity.PRICES]))
