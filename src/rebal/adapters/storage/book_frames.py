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
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from rebal.adapters.storage import tables as t
from rebal.adapters.storage.policies import fetch_rows
from rebal.adapters.storage.unit_of_work import SqlUnitOfWork
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


def read_tables(uow: SqlUnitOfWork) -> Tables:
    """The store's book (open accounts, latest model versions, current prices) as the
    :class:`~rebal.io.tables.Tables` the core's book is built from, in book order."""
    a, h, f, r = t.accounts, t.holdings, t.cash_flows, t.account_restrictions
    open_ = sa.and_(a.c.firm_id == uow.firm, a.c.closed_at.is_(None))
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
            .where(f.c.firm_id == uow.firm, f.c.state == CashFlowState.PENDING.value)
            .group_by(f.c.account_id),
        )
    )
    banned: dict[str, set[str]] = defaultdict(set)
    for account, symbol in fetch_rows(
        uow, sa.select(r.c.account_id, r.c.symbol).where(r.c.firm_id == uow.firm)
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
            h.c.firm_id == uow.firm
        ),
    )
    holdings = pd.DataFrame.from_records(held, columns=["account", "symbol", "nano"]).astype(
        {"account": object, "symbol": object}
    )
    holdings = holdings[ids.get_indexer(holdings["account"]) >= 0]
    nano = holdings.pop("nano").to_numpy(dtype=np.int64)
    holdings["quantity_micro"], holdings["quantity_rest_nano"] = nano // 1000, nano % 1000
    models = [
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
    prices = [
        {
            "symbol": p.symbol,
            "price": float(p.price),
            "price_text": format(p.price, "f"),
            "price_exact": p.price,
        }
        for p in uow.prices.current()
    ]
    return Tables(
        models=pd.DataFrame(
            models,
            columns=[
                "model",
                "symbol",
                "weight",
                *_LIMITS,
                "weight_exact",
                *(f"{c}_exact" for c in _LIMITS),
            ],
        ),
        accounts=frame.reset_index(drop=True),
        holdings=holdings,
        prices=pd.DataFrame(prices, columns=["symbol", "price", "price_text", "price_exact"]),
    )
