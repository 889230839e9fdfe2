"""Runs, their events, orders and fills on the database (:mod:`rebal.ports.storage`).

What the run layer relies on, kept by the schema itself: a run's key is unique (a second start
of the same run finds the first, even when two processes start it at once: ``INSERT ... ON
CONFLICT DO NOTHING``); a client order id is unique within a firm, so an intent is stored once;
a broker order id names one order; a fill reported twice is stored once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence, Set
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from rebal.adapters.storage import tables as t
from rebal.adapters.storage.repositories import SqlRepository, chunks
from rebal.domain.audit import AuditAction, Entity, record_json
from rebal.domain.firm import check_firm
from rebal.domain.ids import (
    AccountId,
    BrokerOrderId,
    ClientOrderId,
    FillId,
    ProposalId,
    RunId,
    Symbol,
)
from rebal.domain.money import Money, Quantity
from rebal.domain.order import (
    Fill,
    LotInstruction,
    Order,
    OrderState,
    OrderType,
    Side,
    TimeInForce,
    check_update,
)
from rebal.domain.run import (
    Run,
    RunEvent,
    RunKey,
    RunState,
    RunType,
    ScopeKind,
    check_start,
    check_transition,
)
from rebal.ports.storage import Conflict, NotFound

_KEY = ("firm_id", "scope", "scope_name", "as_of", "type", "model_version")


class SqlRuns(SqlRepository):
    """:class:`rebal.ports.storage.RunRepository`."""

    def _run(self, row: sa.Row[Any]) -> Run:
        return Run(
            id=RunId(row.id),
            key=RunKey(
                ScopeKind(row.scope),
                row.scope_name,
                row.as_of,
                RunType(row.type),
                row.model_version,
            ),
            state=RunState(row.state),
            created_at=row.created_at,
            updated_at=row.updated_at,
            reason=row.reason,
            proposal=None if row.proposal_id is None else ProposalId(row.proposal_id),
            firm=self._firm,
        )

    def _key(self, key: RunKey) -> dict[str, Any]:
        return {
            "firm_id": self._firm,
            "scope": key.scope.value,
            "scope_name": key.name,
            "as_of": key.as_of,
            "type": key.type.value,
            "model_version": key.model_version,
        }

    def start(self, run: Run, reason: str) -> tuple[Run, bool]:
        check_start(run)
        check_firm(self._firm, run)
        self._uow.firms.require()
        if run.proposal is not None and not self._existing(t.proposals.c.id, [run.proposal]):
            raise NotFound(f"run {run.id}: proposal {run.proposal!r} is not stored")
        insert = (postgresql.insert if self._uow.dialect == "postgresql" else sqlite.insert)(t.runs)
        added = self._uow.execute(
            insert.values(
                **self._key(run.key),
                id=run.id,
                state=run.state.value,
                reason=run.reason,
                proposal_id=run.proposal,
                created_at=run.created_at,
                updated_at=run.updated_at,
            )
            .on_conflict_do_nothing(index_elements=list(_KEY))
            .returning(t.runs.c.id)
        ).first()
        if added is None:
            stored = self.find(run.key)
            assert stored is not None
            return stored, False
        self._event(run.id, run.created_at, run.state, reason)
        self._uow.record(AuditAction.CREATE, Entity.RUN, run.id, None, run)
        return run, True

    def get(self, run: RunId, *, for_update: bool = False) -> Run | None:
        query = sa.select(t.runs).where(t.runs.c.firm_id == self._firm, t.runs.c.id == run)
        row = self._uow.connection.execute(query.with_for_update() if for_update else query).first()
        return None if row is None else self._run(row)

    def find(self, key: RunKey) -> Run | None:
        where = [t.runs.c[name] == value for name, value in self._key(key).items()]
        row = self._uow.connection.execute(sa.select(t.runs).where(*where)).first()
        return None if row is None else self._run(row)

    def list(self, state: RunState | None = None) -> Sequence[Run]:
        r = t.runs
        query = sa.select(r).where(r.c.firm_id == self._firm)
        if state is not None:
            query = query.where(r.c.state == state.value)
        return [self._run(row) for row in self._rows(query.order_by(r.c.created_at, r.c.id))]

    def _stored(self, run: RunId) -> Run:
        found = self.get(run, for_update=True)
        if found is None:
            raise NotFound(f"run {run!r} is not stored")
        return found

    def _event(self, run: RunId, at: datetime, state: RunState, reason: str) -> None:
        self._uow.execute(
            sa.insert(t.run_events).values(
                firm_id=self._firm, run_id=run, at=at, state=state.value, reason=reason
            )
        )

    def transition(self, run: RunId, state: RunState, at: datetime, reason: str) -> Run:
        before = self._stored(run)
        check_transition(run, before.state, state)
        self._uow.execute(
            sa.update(t.runs)
            .where(t.runs.c.firm_id == self._firm, t.runs.c.id == run)
            .values(state=state.value, reason=reason, updated_at=at)
        )
        self._event(run, at, state, reason)
        after = Run(
            id=before.id,
            key=before.key,
            state=state,
            created_at=before.created_at,
            updated_at=at,
            reason=reason,
            proposal=before.proposal,
            firm=before.firm,
        )
        self._uow.record(AuditAction.UPDATE, Entity.RUN, run, before, after)
        return after

    def note(self, run: RunId, at: datetime, reason: str) -> None:
        self._event(run, at, self._stored(run).state, reason)

    def events(self, run: RunId) -> Sequence[RunEvent]:
        e = t.run_events
        return [
            RunEvent(run=RunId(r.run_id), at=r.at, state=RunState(r.state), reason=r.reason)
            for r in self._rows(
                sa.select(e).where(e.c.firm_id == self._firm, e.c.run_id == run).order_by(e.c.seq)
            )
        ]


#: The columns an :class:`Order` is read from (a read parses no instant it does not use).
_ORDER_COLUMNS = [
    t.orders.c[name]
    for name in (
        "client_order_id", "account_id", "symbol", "side", "quantity", "notional", "type",
        "limit_price", "time_in_force", "extended_hours", "state", "filled_quantity",
        "filled_notional", "broker_order_id", "parent", "reason", "run_id", "submitted_at",
        "lot_instruction",
    )
]  # fmt: skip
#: The columns a :class:`Fill` is read from.
_FILL_COLUMNS = [
    t.fills.c[name]
    for name in ("id", "client_order_id", "account_id", "symbol", "side", "quantity", "price", "at")
]


class SqlOrders(SqlRepository):
    """:class:`rebal.ports.storage.OrderRepository`."""

    @staticmethod
    def _order(row: sa.Row[Any]) -> Order:
        return Order(
            client_order_id=ClientOrderId(row.client_order_id),
            account=AccountId(row.account_id),
            symbol=Symbol(row.symbol),
            side=Side(row.side),
            quantity=None if row.quantity is None else Quantity(row.quantity),
            notional=None if row.notional is None else Money(row.notional),
            type=OrderType(row.type),
            limit_price=row.limit_price,
            time_in_force=TimeInForce(row.time_in_force),
            extended_hours=row.extended_hours,
            state=OrderState(row.state),
            filled_quantity=Quantity(row.filled_quantity),
            filled_notional=Money(row.filled_notional),
            broker_order_id=None
            if row.broker_order_id is None
            else BrokerOrderId(row.broker_order_id),
            parent=None if row.parent is None else ClientOrderId(row.parent),
            reason=row.reason,
            run=None if row.run_id is None else RunId(row.run_id),
            submitted_at=row.submitted_at,
            lots=None
            if row.lot_instruction is None
            else LotInstruction.of_dict(json.loads(row.lot_instruction)),
        )

    def _progress(self, order: Order) -> dict[str, Any]:
        """The columns an update may change."""
        return {
            "state": order.state.value,
            "filled_quantity": order.filled_quantity,
            "filled_notional": order.filled_notional,
            "broker_order_id": order.broker_order_id,
            "reason": order.reason,
            "submitted_at": order.submitted_at,
            "updated_at": self._uow.now,
        }

    def add(self, orders: Sequence[Order]) -> None:
        ids = [o.client_order_id for o in orders]
        known = sorted(self._existing(t.orders.c.client_order_id, ids))
        repeated = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) < len(ids) else []
        if known or repeated:
            raise Conflict(f"client order id already stored: {(known or repeated)[0]}")
        self._require(t.accounts.c.id, {o.account for o in orders}, "account")
        self._require(t.runs.c.id, {o.run for o in orders if o.run is not None}, "run")
        parents = {o.parent for o in orders if o.parent is not None} - set(ids)
        self._require(t.orders.c.client_order_id, parents, "parent order")
        self._uow.insert(
            t.orders,
            [
                {
                    "firm_id": self._firm,
                    "client_order_id": o.client_order_id,
                    "run_id": o.run,
                    "account_id": o.account,
                    "symbol": o.symbol,
                    "side": o.side.value,
                    "quantity": o.quantity,
                    "notional": o.notional,
                    "type": o.type.value,
                    "limit_price": o.limit_price,
                    "time_in_force": o.time_in_force.value,
                    "extended_hours": o.extended_hours,
                    "parent": o.parent,
                    "created_at": self._uow.now,
                    "lot_instruction": None if o.lots is None else record_json(o.lots.as_dict()),
                }
                | self._progress(o)
                for o in orders
            ],
        )
        for order in orders:
            self._uow.record(AuditAction.CREATE, Entity.ORDER, order.client_order_id, None, order)

    def _require(self, column: sa.Column[Any], keys: Set[str], what: str) -> None:
        missing = sorted(keys - self._existing(column, keys))
        if missing:
            raise NotFound(f"{what} {missing[0]!r} is not stored (named by an order)")

    def _select(self, *where: sa.ColumnElement[bool], for_update: bool = False) -> list[Order]:
        o = t.orders
        query = (
            sa.select(*_ORDER_COLUMNS).where(o.c.firm_id == self._firm, *where).order_by(o.c.seq)
        )
        return [
            self._order(r) for r in self._rows(query.with_for_update() if for_update else query)
        ]

    def get(self, order: ClientOrderId, *, for_update: bool = False) -> Order | None:
        found = self._select(t.orders.c.client_order_id == order, for_update=for_update)
        return found[0] if found else None

    def for_run(self, run: RunId) -> Sequence[Order]:
        return self._select(t.orders.c.run_id == run)

    def working(self) -> Sequence[Order]:
        terminal = [s.value for s in OrderState if s.terminal]
        return self._select(t.orders.c.state.not_in(terminal))

    def update(self, orders: Sequence[Order]) -> None:
        ids = [o.client_order_id for o in orders]
        stored = {
            o.client_order_id: o
            for part in chunks(ids)
            for o in self._select(t.orders.c.client_order_id.in_(part), for_update=True)
        }
        changed = []
        for order in orders:
            before = stored.get(order.client_order_id)
            if before is None:
                raise NotFound(f"order {order.client_order_id!r} is not stored")
            check_update(before, order)
            if before != order:
                changed.append((before, order))
                stored[order.client_order_id] = order
        o = t.orders
        self._uow.execute(
            sa.update(o).where(
                o.c.firm_id == self._firm, o.c.client_order_id == sa.bindparam("b_id")
            ),
            [self._progress(after) | {"b_id": after.client_order_id} for _, after in changed],
        )
        for before, after in changed:
            self._uow.record(AuditAction.UPDATE, Entity.ORDER, after.client_order_id, before, after)


class SqlFills(SqlRepository):
    """:class:`rebal.ports.storage.FillRepository`."""

    @staticmethod
    def _fill(row: sa.Row[Any]) -> Fill:
        return Fill(
            id=FillId(row.id),
            client_order_id=ClientOrderId(row.client_order_id),
            account=AccountId(row.account_id),
            symbol=Symbol(row.symbol),
            side=Side(row.side),
            quantity=Quantity(row.quantity),
            price=row.price,
            at=row.at,
        )

    def add(self, fills: Sequence[Fill]) -> Sequence[Fill]:
        f = t.fills
        known = {
            found.id: found
            for part in chunks([x.id for x in fills])
            for found in map(
                self._fill,
                self._rows(
                    sa.select(*_FILL_COLUMNS).where(f.c.firm_id == self._firm, f.c.id.in_(part))
                ),
            )
        }
        new: dict[FillId, Fill] = {}
        for fill in fills:
            seen = known.get(fill.id) or new.get(fill.id)
            if seen is not None and seen != fill:
                raise Conflict(f"fill {fill.id!r} was reported before with other values")
            if seen is None:
                new[fill.id] = fill
        orders = {x.client_order_id for x in new.values()}
        missing = sorted(orders - self._existing(t.orders.c.client_order_id, orders))
        if missing:
            raise NotFound(f"order {missing[0]!r} is not stored (named by a fill)")
        self._uow.insert(
            f,
            [
                {
                    "firm_id": self._firm,
                    "id": x.id,
                    "client_order_id": x.client_order_id,
                    "account_id": x.account,
                    "symbol": x.symbol,
                    "side": x.side.value,
                    "quantity": x.quantity,
                    "price": x.price,
                    "at": x.at,
                    "recorded_at": self._uow.now,
                }
                for x in new.values()
            ],
        )
        for fill in new.values():
            self._uow.record(AuditAction.CREATE, Entity.FILL, fill.id, None, fill)
        return list(new.values())

    def for_orders(self, orders: Sequence[ClientOrderId]) -> Mapping[ClientOrderId, Sequence[Fill]]:
        f = t.fills
        found: dict[ClientOrderId, list[Fill]] = {o: [] for o in orders}
        for part in chunks(list(orders)):
            query = sa.select(*_FILL_COLUMNS).where(
                f.c.firm_id == self._firm, f.c.client_order_id.in_(part)
            )
            for row in self._rows(query.order_by(f.c.seq)):
                found[ClientOrderId(row.client_order_id)].append(self._fill(row))
        return found

    def for_order(self, order: ClientOrderId) -> Sequence[Fill]:
        f = t.fills
        return [
            self._fill(r)
            for r in self._rows(
                sa.select(*_FILL_COLUMNS)
                .where(f.c.firm_id == self._firm, f.c.client_order_id == order)
                .order_by(f.c.seq)
            )
        ]
