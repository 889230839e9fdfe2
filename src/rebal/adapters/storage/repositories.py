"""The book's repositories on the database: firms, models, accounts, holdings, prices, cash
flows, proposals and the audit trail. Each is a thin mapping between rows of
:mod:`rebal.adapters.storage.tables` and the domain's records, with the semantics of
:mod:`rebal.ports.storage`; writes go in bulk (one statement for many rows), so that a book of
thousands of accounts is stored in seconds.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from rebal.adapters.storage import tables as t
from rebal.domain.account import (
    Account,
    AccountType,
    Holding,
    ModelVersion,
    Price,
    Target,
    TaxLot,
    check_new_quotes,
    lots_of,
    positions_of,
)
from rebal.domain.audit import AuditAction, AuditEntry, Entity
from rebal.domain.cash import RESTATED, CashFlow, CashFlowState, pending_total
from rebal.domain.firm import Firm, check_firm
from rebal.domain.ids import (
    AccountId,
    CashFlowId,
    FirmId,
    HouseholdId,
    ModelId,
    ProposalId,
    Symbol,
)
from rebal.domain.money import Money, Quantity
from rebal.domain.order import Side
from rebal.domain.proposal import AccountProposal, Proposal, ProposedOrder
from rebal.ports.storage import Conflict, NotFound, StoreError

if TYPE_CHECKING:
    from rebal.adapters.storage.unit_of_work import SqlUnitOfWork

T = TypeVar("T")
#: Keys per ``IN (...)`` list: well under what SQLite and PostgreSQL accept in one statement.
CHUNK = 5000


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def integrity_error(exc: Exception) -> StoreError:
    """A write the database refused (SQLAlchemy's error or the driver's own) as the port's
    error: a duplicate key is a :class:`Conflict`, a reference to a missing record
    :class:`NotFound`."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0]
    code = getattr(orig, "sqlstate", None)
    if code == "23505" or "UNIQUE constraint failed" in text:
        return Conflict(f"already stored: {text}")
    if code == "23503" or "FOREIGN KEY constraint failed" in text:
        return NotFound(f"refers to a record that is not stored: {text}")
    return StoreError(f"the database refused the change: {text}")


class SqlRepository:
    """What every repository shares: its unit of work, connection and firm."""

    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    @property
    def _firm(self) -> FirmId:
        return self._uow.firm

    def _rows(self, statement: Any) -> Sequence[sa.Row[Any]]:
        return list(self._uow.connection.execute(statement))

    def _next_ordinal(self, table: sa.Table) -> int:
        found = self._uow.connection.execute(
            sa.select(sa.func.max(table.c.ordinal)).where(table.c.firm_id == self._firm)
        ).scalar()
        return 1 if found is None else int(found) + 1

    def _existing(self, column: sa.Column[Any], keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` are stored in ``column`` (a key column of a firm's table)."""
        wanted = sorted(set(keys))
        found: set[str] = set()
        for part in chunks(wanted):
            found.update(
                self._uow.connection.execute(
                    sa.select(column).where(column.table.c.firm_id == self._firm, column.in_(part))
                ).scalars()
            )
        return found


class SqlFirms(SqlRepository):
    """:class:`rebal.ports.storage.FirmRepository`."""

    def get(self, firm: FirmId) -> Firm | None:
        row = self._uow.connection.execute(sa.select(t.firms).where(t.firms.c.id == firm)).first()
        if row is None:
            return None
        return Firm(id=FirmId(row.id), name=row.name, created_at=row.created_at)

    def add(self, firm: Firm) -> None:
        if self.get(firm.id) is not None:
            raise Conflict(f"firm {firm.id!r} already exists")
        self._uow.execute(
            sa.insert(t.firms).values(id=firm.id, name=firm.name, created_at=firm.created_at)
        )
        self._uow.record(AuditAction.CREATE, Entity.FIRM, firm.id, None, firm)

    def require(self) -> None:
        """Raise :class:`NotFound` unless the unit of work's firm is stored."""
        if self.get(self._firm) is None:
            raise NotFound(f"firm {self._firm!r} is not in the store")


class SqlModels(SqlRepository):
    """:class:`rebal.ports.storage.ModelRepository`."""

    def set_targets(self, model: ModelId, targets: Sequence[Target]) -> ModelVersion:
        self._uow.firms.require()
        row = self._uow.connection.execute(
            sa.select(t.models.c.retired_at).where(
                t.models.c.firm_id == self._firm, t.models.c.id == model
            )
        ).first()
        if row is None:
            self._uow.execute(
                sa.insert(t.models).values(
                    firm_id=self._firm, id=model, ordinal=self._next_ordinal(t.models)
                )
            )
        latest = self.latest(model)
        if latest is None or latest.targets != tuple(targets):
            latest = self._add_version(model, targets, 1 if latest is None else latest.version + 1)
        if row is not None and row.retired_at is not None:
            self._uow.execute(
                sa.update(t.models)
                .where(t.models.c.firm_id == self._firm, t.models.c.id == model)
                .values(retired_at=None)
            )
            self._uow.record(AuditAction.UPDATE, Entity.MODEL, model, "retired", "in the book")
        return latest

    def _add_version(self, model: ModelId, targets: Sequence[Target], number: int) -> ModelVersion:
        version = ModelVersion(
            model=model,
            version=number,
            targets=tuple(targets),
            created_at=self._uow.now,
            firm=self._firm,
        )
        self._uow.execute(
            sa.insert(t.model_versions).values(
                firm_id=self._firm, model_id=model, version=number, created_at=version.created_at
            )
        )
        self._uow.insert(
            t.model_targets,
            [
                {
                    "firm_id": self._firm,
                    "model_id": model,
                    "version": number,
                    "ordinal": i,
                    "symbol": target.symbol,
                    "weight": target.weight,
                    "band_abs": target.band_abs,
                    "band_rel": target.band_rel,
                    "rail_abs": target.rail_abs,
                    "rail_rel": target.rail_rel,
                }
                for i, target in enumerate(version.targets, start=1)
            ],
        )
        self._uow.record(AuditAction.CREATE, Entity.MODEL, f"{model}/{number}", None, version)
        return version

    def retire(self, model: ModelId) -> None:
        row = self._uow.connection.execute(
            sa.select(t.models.c.retired_at).where(
                t.models.c.firm_id == self._firm, t.models.c.id == model
            )
        ).first()
        if row is None:
            raise NotFound(f"model {model!r} is not stored")
        if row.retired_at is None:
            self._uow.execute(
                sa.update(t.models)
                .where(t.models.c.firm_id == self._firm, t.models.c.id == model)
                .values(retired_at=self._uow.now)
            )
            self._uow.record(AuditAction.UPDATE, Entity.MODEL, model, "in the book", "retired")

    def _versions(self, *where: sa.ColumnElement[bool]) -> list[ModelVersion]:
        """Versions matching ``where`` with their targets, by book order then version."""
        v, m, g = t.model_versions, t.models, t.model_targets
        query = (
            sa.select(v.c.model_id, v.c.version, v.c.created_at, g)
            .join(m, sa.and_(m.c.firm_id == v.c.firm_id, m.c.id == v.c.model_id))
            .join(
                g,
                sa.and_(
                    g.c.firm_id == v.c.firm_id,
                    g.c.model_id == v.c.model_id,
                    g.c.version == v.c.version,
                ),
            )
            .where(v.c.firm_id == self._firm, *where)
            .order_by(m.c.ordinal, v.c.version, g.c.ordinal)
        )
        grouped: dict[tuple[str, int], list[sa.Row[Any]]] = {}
        for row in self._rows(query):
            grouped.setdefault((row.model_id, row.version), []).append(row)
        return [
            ModelVersion(
                model=ModelId(model),
                version=number,
                created_at=rows[0].created_at,
                firm=self._firm,
                targets=tuple(
                    Target(
                        symbol=Symbol(r.symbol),
                        weight=r.weight,
                        band_abs=r.band_abs,
                        band_rel=r.band_rel,
                        rail_abs=r.rail_abs,
                        rail_rel=r.rail_rel,
                    )
                    for r in rows
                ),
            )
            for (model, number), rows in grouped.items()
        ]

    def latest(self, model: ModelId) -> ModelVersion | None:
        history = self.history(model)
        return history[-1] if history else None

    def version(self, model: ModelId, version: int) -> ModelVersion | None:
        found = self._versions(
            t.model_versions.c.model_id == model, t.model_versions.c.version == version
        )
        return found[0] if found else None

    def history(self, model: ModelId) -> Sequence[ModelVersion]:
        return self._versions(t.model_versions.c.model_id == model)

    def current(self) -> Sequence[ModelVersion]:
        v, other = t.model_versions, t.model_versions.alias("other")
        newest = (
            sa.select(sa.func.max(other.c.version))
            .where(other.c.firm_id == v.c.firm_id, other.c.model_id == v.c.model_id)
            .scalar_subquery()
        )
        return self._versions(t.models.c.retired_at.is_(None), v.c.version == newest)


class SqlAccounts(SqlRepository):
    """:class:`rebal.ports.storage.AccountRepository`: the accounts table (with the cash
    balance), their restrictions, and pending cash from the cash flows."""

    def _load(self, *where: sa.ColumnElement[bool], everything: bool = False) -> list[Account]:
        a = t.accounts
        rows = self._rows(
            sa.select(a).where(a.c.firm_id == self._firm, *where).order_by(a.c.ordinal)
        )
        if not rows:
            return []
        ids = [r.id for r in rows]
        restricted: dict[str, set[Symbol]] = defaultdict(set)
        r = t.account_restrictions
        for part in [None] if everything else chunks(ids):
            query = sa.select(r.c.account_id, r.c.symbol).where(r.c.firm_id == self._firm)
            if part is not None:
                query = query.where(r.c.account_id.in_(part))
            for row in self._rows(query):
                restricted[row.account_id].add(Symbol(row.symbol))
        pending = self._uow.cash_flows.pending_of(None if everything else ids)
        return [
            Account(
                id=AccountId(row.id),
                model=None if row.model_id is None else ModelId(row.model_id),
                cash=Money(row.cash),
                type=AccountType(row.type),
                household=None if row.household is None else HouseholdId(row.household),
                can_trade=row.can_trade,
                restricted=frozenset(restricted.get(row.id, ())),
                pending_cash=pending_total(pending.get(AccountId(row.id), ())),
                liquidate=row.liquidate,
                closed_at=row.closed_at,
                firm=self._firm,
            )
            for row in rows
        ]

    def get(self, account: AccountId) -> Account | None:
        found = self._load(t.accounts.c.id == account)
        return found[0] if found else None

    def get_many(self, accounts: Sequence[AccountId]) -> Mapping[AccountId, Account]:
        return self._stored(accounts)

    def list(self, model: ModelId | None = None) -> Sequence[Account]:
        where: list[sa.ColumnElement[bool]] = [t.accounts.c.closed_at.is_(None)]
        if model is not None:
            where.append(t.accounts.c.model_id == model)
        return self._load(*where, everything=True)

    def _stored(self, ids: Sequence[str]) -> dict[AccountId, Account]:
        return {a.id: a for part in chunks(ids) for a in self._load(t.accounts.c.id.in_(part))}

    def save(self, accounts: Sequence[Account]) -> None:
        self._uow.firms.require()
        for account in accounts:
            check_firm(self._firm, account)
        models = {a.model for a in accounts if a.model is not None}
        missing = sorted(models - self._existing(t.models.c.id, models))
        if missing:
            raise NotFound(f"model {missing[0]!r} is not stored (named by an account)")
        before = self._stored([a.id for a in accounts])
        changed = [a for a in accounts if before.get(a.id) != a]
        if not changed:
            return
        created = [a for a in changed if a.id not in before]
        updated = [a for a in changed if a.id in before]
        ordinal = self._next_ordinal(t.accounts)
        self._uow.insert(
            t.accounts, [self._row(a) | {"ordinal": ordinal + i} for i, a in enumerate(created)]
        )
        a = t.accounts
        self._uow.execute(  # executemany: SET the columns each row names
            sa.update(a).where(a.c.firm_id == self._firm, a.c.id == sa.bindparam("b_id")),
            [
                {k: v for k, v in self._row(x).items() if k not in ("firm_id", "id")}
                | {"b_id": x.id}
                for x in updated
            ],
        )
        r = t.account_restrictions
        for part in chunks([x.id for x in updated]):
            self._uow.execute(
                sa.delete(r).where(r.c.firm_id == self._firm, r.c.account_id.in_(part))
            )
        self._uow.insert(
            r,
            [
                {"firm_id": self._firm, "account_id": x.id, "symbol": symbol}
                for x in changed
                for symbol in sorted(x.restricted)
            ],
        )
        for x in changed:
            old = before.get(x.id)
            action = AuditAction.CREATE if old is None else AuditAction.UPDATE
            self._uow.record(action, Entity.ACCOUNT, x.id, old, x)
        self._restate_pending(
            [
                x
                for x in changed
                if x.pending_cash != (before[x.id].pending_cash if x.id in before else 0)
            ]
        )

    def _row(self, account: Account) -> dict[str, Any]:
        return {
            "firm_id": self._firm,
            "id": account.id,
            "model_id": account.model,
            "type": account.type.value,
            "household": account.household,
            "can_trade": account.can_trade,
            "liquidate": account.liquidate,
            "cash": account.cash,
            "closed_at": account.closed_at,
            "updated_at": self._uow.now,
        }

    def _restate_pending(self, accounts: Sequence[Account]) -> None:
        """Cancel the pending flows of ``accounts``, then record one flow of each one's
        pending cash (none for zero)."""
        if not accounts:
            return
        flows = self._uow.cash_flows
        pending = flows.pending_of([a.id for a in accounts])
        flows.cancel([f for a in accounts for f in pending.get(a.id, ())])
        flows.insert(
            [
                CashFlow(
                    id=CashFlowId(uuid.uuid4().hex),
                    account=a.id,
                    amount=a.pending_cash,
                    created_at=self._uow.now,
                    note=RESTATED,
                )
                for a in accounts
                if a.pending_cash
            ]
        )


class SqlHoldings(SqlRepository):
    """:class:`rebal.ports.storage.HoldingRepository`."""

    def _load(self, *where: sa.ColumnElement[bool], open_only: bool = False) -> list[Holding]:
        h, a = t.holdings, t.accounts
        query = sa.select(h).where(h.c.firm_id == self._firm, *where)
        if open_only:
            query = (
                query.join(a, sa.and_(a.c.firm_id == h.c.firm_id, a.c.id == h.c.account_id))
                .where(a.c.closed_at.is_(None))
                .order_by(a.c.ordinal)
            )
        return [
            Holding(
                account=AccountId(r.account_id),
                symbol=Symbol(r.symbol),
                quantity=Quantity(r.quantity),
                cost_basis=None if r.cost_basis is None else Money(r.cost_basis),
                acquired=r.acquired,
            )
            for r in self._rows(query.order_by(h.c.account_id, h.c.ordinal))
        ]

    def of(self, account: AccountId) -> Sequence[Holding]:
        return self._load(t.holdings.c.account_id == account)

    def of_many(self, accounts: Sequence[AccountId]) -> Mapping[AccountId, Sequence[Holding]]:
        found: dict[AccountId, list[Holding]] = {a: [] for a in accounts}
        for part in chunks(list(accounts)):
            for held in self._load(t.holdings.c.account_id.in_(part)):
                found[held.account].append(held)
        return found

    def all(self) -> Sequence[Holding]:
        return self._load(open_only=True)

    def replace(self, holdings: Mapping[AccountId, Sequence[Holding]]) -> Sequence[AccountId]:
        named = list(holdings)
        missing = sorted(set(named) - self._existing(t.accounts.c.id, named))
        if missing:
            raise NotFound(f"account {missing[0]!r} is not stored")
        for account, rows in holdings.items():
            if any(h.account != account for h in rows):
                raise ValueError(f"holdings given for {account} name another account")
        before: dict[str, list[Holding]] = defaultdict(list)
        for part in chunks(named):
            for held in self._load(t.holdings.c.account_id.in_(part)):
                before[held.account].append(held)
        changed = [acc for acc, rows in holdings.items() if before.get(acc, []) != list(rows)]
        if not changed:
            return []
        h = t.holdings
        for part in chunks(changed):
            self._uow.execute(
                sa.delete(h).where(h.c.firm_id == self._firm, h.c.account_id.in_(part))
            )
        self._uow.insert(
            h,
            [
                {
                    "firm_id": self._firm,
                    "account_id": acc,
                    "ordinal": i,
                    "symbol": held.symbol,
                    "quantity": held.quantity,
                    "cost_basis": held.cost_basis,
                    "acquired": held.acquired,
                }
                for acc in changed
                for i, held in enumerate(holdings[acc], start=1)
            ],
        )
        for acc in changed:
            old, new = before.get(acc, []), list(holdings[acc])
            action = AuditAction.of(old, new)
            self._uow.record(action, Entity.HOLDINGS, acc, old or None, new or None)
        return changed

    def positions(self, account: AccountId) -> Mapping[Symbol, Quantity]:
        return positions_of(self.of(account))

    def lots(self, account: AccountId) -> Sequence[TaxLot]:
        return lots_of(account, self.of(account))


class SqlPrices(SqlRepository):
    """:class:`rebal.ports.storage.PriceRepository`: ``until`` is when a quote stopped being
    current (NULL while it is)."""

    @staticmethod
    def _price(row: sa.Row[Any]) -> Price:
        return Price(symbol=Symbol(row.symbol), price=row.price, at=row.at)

    def _current_rows(self) -> list[sa.Row[Any]]:
        p = t.prices
        return list(
            self._rows(
                sa.select(p).where(p.c.firm_id == self._firm, p.c.until.is_(None)).order_by(p.c.seq)
            )
        )

    def record(self, prices: Sequence[Price], *, replace_all: bool = False) -> None:
        self._uow.firms.require()
        current = {r.symbol: r for r in self._current_rows()}
        check_new_quotes(prices, {s: self._price(r) for s, r in current.items()})
        given = {q.symbol: q for q in prices}
        if not given and not (replace_all and current):
            return
        ended = [
            {"b_seq": r.seq, "until": given[s].at if s in given else self._uow.now}
            for s, r in current.items()
            if s in given or replace_all
        ]
        p = t.prices
        self._uow.execute(sa.update(p).where(p.c.seq == sa.bindparam("b_seq")), ended)
        self._uow.insert(
            p,
            [
                {"firm_id": self._firm, "symbol": q.symbol, "price": q.price, "at": q.at}
                for q in prices
            ],
        )
        before = [self._price(r) for s, r in current.items() if s in given or replace_all]
        self._uow.record(AuditAction.UPDATE, Entity.PRICES, "", before, list(prices))

    def current(self) -> Sequence[Price]:
        return [self._price(r) for r in self._current_rows()]

    def quotes(self, symbols: Iterable[Symbol], at: datetime) -> Mapping[Symbol, Price]:
        p = t.prices
        found: dict[Symbol, Price] = {}
        for part in chunks(sorted(set(symbols))):
            query = (
                sa.select(p)
                .where(
                    p.c.firm_id == self._firm,
                    p.c.symbol.in_(part),
                    p.c.at <= at,
                    sa.or_(p.c.until.is_(None), p.c.until > at),
                )
                .order_by(p.c.at, p.c.seq)
            )
            for row in self._rows(query):
                found[Symbol(row.symbol)] = self._price(row)
        return found

    def history(self, symbol: Symbol) -> Sequence[Price]:
        p = t.prices
        return [
            self._price(r)
            for r in self._rows(
                sa.select(p)
                .where(p.c.firm_id == self._firm, p.c.symbol == symbol)
                .order_by(p.c.at, p.c.seq)
            )
        ]


class SqlCashFlows(SqlRepository):
    """:class:`rebal.ports.storage.CashFlowRepository`."""

    def _flow(self, row: sa.Row[Any]) -> CashFlow:
        return CashFlow(
            id=CashFlowId(row.id),
            account=AccountId(row.account_id),
            amount=Money(row.amount),
            created_at=row.created_at,
            state=CashFlowState(row.state),
            closed_at=row.closed_at,
            note=row.note,
        )

    def add(self, flow: CashFlow) -> None:
        if flow.state is not CashFlowState.PENDING:
            raise ValueError(f"cash flow {flow.id}: a new flow is pending")
        if self.get(flow.id) is not None:
            raise Conflict(f"cash flow {flow.id!r} already exists")
        if not self._existing(t.accounts.c.id, [flow.account]):
            raise NotFound(f"cash flow {flow.id}: account {flow.account!r} is not stored")
        self.insert([flow])

    def insert(self, flows: Sequence[CashFlow]) -> None:
        """Store new pending flows of stored accounts, in bulk (no checks: see :meth:`add`)."""
        self._uow.insert(
            t.cash_flows,
            [
                {
                    "firm_id": self._firm,
                    "id": f.id,
                    "account_id": f.account,
                    "amount": f.amount,
                    "state": f.state.value,
                    "created_at": f.created_at,
                    "closed_at": None,
                    "note": f.note,
                }
                for f in flows
            ],
        )
        for flow in flows:
            self._uow.record(AuditAction.CREATE, Entity.CASH_FLOW, flow.id, None, flow)

    def get(self, flow: CashFlowId) -> CashFlow | None:
        c = t.cash_flows
        row = self._uow.connection.execute(
            sa.select(c).where(c.c.firm_id == self._firm, c.c.id == flow)
        ).first()
        return None if row is None else self._flow(row)

    def pending_of(self, accounts: Sequence[str] | None) -> dict[AccountId, list[CashFlow]]:
        """Pending flows of ``accounts`` (``None``: of every account), oldest first."""
        c = t.cash_flows
        query = sa.select(c).where(
            c.c.firm_id == self._firm, c.c.state == CashFlowState.PENDING.value
        )
        found: dict[AccountId, list[CashFlow]] = defaultdict(list)
        for part in [None] if accounts is None else chunks(accounts):
            where = query if part is None else query.where(c.c.account_id.in_(part))
            for row in self._rows(where.order_by(c.c.created_at, c.c.id)):
                found[AccountId(row.account_id)].append(self._flow(row))
        return found

    def pending(self, account: AccountId | None = None) -> Sequence[CashFlow]:
        flows = self.pending_of(None if account is None else [account])
        return sorted((f for group in flows.values() for f in group), key=lambda f: f.created_at)

    def close(self, flow: CashFlowId, state: CashFlowState) -> CashFlow:
        before = self.get(flow)
        if before is None:
            raise NotFound(f"cash flow {flow!r} is not stored")
        if before.state is not CashFlowState.PENDING or state is CashFlowState.PENDING:
            raise ValueError(f"cash flow {flow} is {before.state}; only a pending flow closes")
        return self._close([before], state)[0]

    def cancel(self, flows: Sequence[CashFlow]) -> None:
        """Cancel these pending flows, in bulk."""
        self._close(flows, CashFlowState.CANCELED)

    def _close(self, flows: Sequence[CashFlow], state: CashFlowState) -> list[CashFlow]:
        c = t.cash_flows
        self._uow.execute(
            sa.update(c)
            .where(c.c.firm_id == self._firm, c.c.id == sa.bindparam("b_id"))
            .values(state=state.value, closed_at=self._uow.now),
            [{"b_id": f.id} for f in flows],
        )
        closed = []
        for before in flows:
            after = CashFlow(
                id=before.id,
                account=before.account,
                amount=before.amount,
                created_at=before.created_at,
                state=state,
                closed_at=self._uow.now,
                note=before.note,
            )
            self._uow.record(AuditAction.UPDATE, Entity.CASH_FLOW, before.id, before, after)
            closed.append(after)
        return closed


class SqlProposals(SqlRepository):
    """:class:`rebal.ports.storage.ProposalRepository`."""

    def add(self, proposal: Proposal) -> None:
        self._uow.firms.require()
        check_firm(self._firm, proposal)
        if self.get(proposal.id) is not None:
            raise Conflict(f"proposal {proposal.id!r} already exists")
        key = {"firm_id": self._firm, "proposal_id": proposal.id}
        self._uow.execute(
            sa.insert(t.proposals).values(
                firm_id=self._firm,
                id=proposal.id,
                as_of=proposal.as_of,
                created_at=proposal.created_at,
                config=proposal.config,
                digest=proposal.digest,
            )
        )
        self._uow.insert(
            t.proposal_accounts,
            [
                key
                | {
                    "ordinal": i,
                    "account_id": a.account,
                    "status": a.status,
                    "reason": a.reason,
                    "model_id": a.model,
                    "model_version": a.model_version,
                }
                for i, a in enumerate(proposal.accounts, start=1)
            ],
        )
        self._uow.insert(
            t.proposal_orders,
            [
                key
                | {
                    "ordinal": i,
                    "account_id": o.account,
                    "symbol": o.symbol,
                    "side": o.side.value,
                    "quantity": o.quantity,
                    "notional": o.notional,
                }
                for i, o in enumerate(proposal.orders, start=1)
            ],
        )
        self._uow.record(AuditAction.CREATE, Entity.PROPOSAL, proposal.id, None, proposal)

    def get(self, proposal: ProposalId) -> Proposal | None:
        p, a, o = t.proposals, t.proposal_accounts, t.proposal_orders
        row = self._uow.connection.execute(
            sa.select(p).where(p.c.firm_id == self._firm, p.c.id == proposal)
        ).first()
        if row is None:
            return None
        accounts = self._rows(
            sa.select(a)
            .where(a.c.firm_id == self._firm, a.c.proposal_id == proposal)
            .order_by(a.c.ordinal)
        )
        orders = self._rows(
            sa.select(o)
            .where(o.c.firm_id == self._firm, o.c.proposal_id == proposal)
            .order_by(o.c.ordinal)
        )
        return Proposal(
            id=ProposalId(row.id),
            as_of=row.as_of,
            created_at=row.created_at,
            config=row.config,
            firm=self._firm,
            accounts=tuple(
                AccountProposal(
                    account=AccountId(r.account_id),
                    status=r.status,
                    reason=r.reason,
                    model=None if r.model_id is None else ModelId(r.model_id),
                    model_version=r.model_version,
                )
                for r in accounts
            ),
            orders=tuple(
                ProposedOrder(
                    account=AccountId(r.account_id),
                    symbol=Symbol(r.symbol),
                    side=Side(r.side),
                    quantity=None if r.quantity is None else Quantity(r.quantity),
                    notional=None if r.notional is None else Money(r.notional),
                )
                for r in orders
            ),
        )

    def list(self) -> Sequence[Proposal]:
        p = t.proposals
        ids = self._uow.connection.execute(
            sa.select(p.c.id)
            .where(p.c.firm_id == self._firm)
            .order_by(p.c.created_at.desc(), p.c.id.desc())
        ).scalars()
        return [found for i in list(ids) if (found := self.get(ProposalId(i))) is not None]


class SqlAudit(SqlRepository):
    """:class:`rebal.ports.storage.AuditTrail`."""

    def entries(self, entity: Entity | None = None, key: str | None = None) -> Sequence[AuditEntry]:
        self._uow.flush_audit()
        a = t.audit_log
        query = sa.select(a).where(a.c.firm_id == self._firm)
        if entity is not None:
            query = query.where(a.c.entity == entity.value)
        if key is not None:
            query = query.where(a.c.key == key)
        return [
            AuditEntry(
                at=r.at,
                actor=r.actor,
                reason=r.reason,
                action=AuditAction(r.action),
                entity=Entity(r.entity),
                key=r.key,
                before=r.before,
                after=r.after,
                firm=FirmId(r.firm_id),
            )
            for r in self._rows(query.order_by(a.c.seq))
        ]
