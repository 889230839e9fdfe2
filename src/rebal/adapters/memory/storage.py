"""The storage port held in memory: the executable statement of the repository contract.

A unit of work takes the store's one lock (so units of work run one at a time, as writers do on
SQLite), works on a copy of the firm's records and swaps the copy in on commit: a unit of work
that ends without committing leaves nothing behind (so a thread opens one unit of work at a
time: a second one waits for the first). Records are immutable, so a copy copies only the
containers. For tests and simulations that need no database; the contract tests in
``tests/integration/adapters/storage/`` run it beside SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from types import TracebackType
from typing import Self

import numpy as np
import numpy.typing as npt

from rebal.adapters.memory.outbox import MemoryOutbox
from rebal.domain.account import (
    Account,
    Holding,
    ModelVersion,
    Price,
    Target,
    TaxLot,
    check_new_quotes,
    lots_of,
    positions_of,
)
from rebal.domain.audit import AuditAction, AuditEntry, Entity, changed_records, record_json
from rebal.domain.cash import RESTATED, CashFlow, CashFlowState, pending_total
from rebal.domain.firm import Firm, check_firm
from rebal.domain.ids import (
    DEFAULT_FIRM,
    AccountId,
    CashFlowId,
    ClientOrderId,
    FillId,
    FirmId,
    ModelId,
    ProposalId,
    RunId,
    Symbol,
)
from rebal.domain.money import NO_MONEY, Quantity
from rebal.domain.order import Fill, Order, check_update
from rebal.domain.policy import InvestmentPolicy, default_policy
from rebal.domain.proposal import Proposal
from rebal.domain.run import Run, RunEvent, RunKey, RunState, check_start, check_transition
from rebal.ports.clock import Clock
from rebal.ports.outbox import OutboxEntry
from rebal.ports.policies import LastRun, ScheduleFacts, ScheduleMark, instants
from rebal.ports.storage import Conflict, NotFound, StoreError
from rebal.tax.realised import RealisedLot


@dataclass
class _Quote:
    price: Price
    until: datetime | None = None  # when a later quote or price list superseded it


@dataclass
class _Records:
    """One firm's records; ``copy`` copies the containers, never the immutable records."""

    models: dict[ModelId, list[ModelVersion]] = field(default_factory=dict)
    retired: set[ModelId] = field(default_factory=set)
    accounts: dict[AccountId, Account] = field(default_factory=dict)  # pending_cash unused
    holdings: dict[AccountId, list[Holding]] = field(default_factory=dict)
    quotes: list[_Quote] = field(default_factory=list)
    flows: dict[CashFlowId, CashFlow] = field(default_factory=dict)
    proposals: dict[ProposalId, Proposal] = field(default_factory=dict)
    runs: dict[RunId, Run] = field(default_factory=dict)
    run_keys: dict[RunKey, RunId] = field(default_factory=dict)
    events: dict[RunId, list[RunEvent]] = field(default_factory=dict)
    orders: dict[ClientOrderId, Order] = field(default_factory=dict)
    fills: dict[FillId, Fill] = field(default_factory=dict)
    realised: dict[tuple[FillId, int], RealisedLot] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    outbox: dict[tuple[str, str], OutboxEntry] = field(default_factory=dict)
    policies: dict[AccountId, InvestmentPolicy] = field(default_factory=dict)
    marks: dict[AccountId, ScheduleMark] = field(default_factory=dict)

    def copy(self) -> _Records:
        return _Records(
            models={k: list(v) for k, v in self.models.items()},
            retired=set(self.retired),
            accounts=dict(self.accounts),
            holdings={k: list(v) for k, v in self.holdings.items()},
            quotes=[_Quote(q.price, q.until) for q in self.quotes],
            flows=dict(self.flows),
            proposals=dict(self.proposals),
            runs=dict(self.runs),
            run_keys=dict(self.run_keys),
            events={k: list(v) for k, v in self.events.items()},
            orders=dict(self.orders),
            fills=dict(self.fills),
            realised=dict(self.realised),
            audit=list(self.audit),
            outbox=dict(self.outbox),
            policies=dict(self.policies),
            marks=dict(self.marks),
        )


class InMemoryStore:
    """A :class:`rebal.ports.storage.Store` in this process's memory."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._claims: dict[str, threading.Lock] = {}
        self._claims_lock = threading.Lock()
        self._firms: dict[FirmId, Firm] = {}
        self._records: dict[FirmId, _Records] = {}

    def unit_of_work(
        self, *, actor: str, reason: str, firm: FirmId = DEFAULT_FIRM
    ) -> InMemoryUnitOfWork:
        """A unit of work of ``firm``; it begins when its ``with`` block is entered."""
        return InMemoryUnitOfWork(self, firm=firm, actor=actor, reason=reason)

    @contextmanager
    def claim(self, name: str) -> Iterator[None]:
        """Hold the claim ``name`` (a lock of this store's, per name) until the block ends."""
        with self._claims_lock:
            held = self._claims.setdefault(name, threading.Lock())
        with held:
            yield


class InMemoryUnitOfWork:
    """A :class:`rebal.ports.storage.UnitOfWork` on a copy of one firm's records."""

    def __init__(self, store: InMemoryStore, *, firm: FirmId, actor: str, reason: str) -> None:
        self._store = store
        self.firm = firm
        self.actor = actor
        self.reason = reason
        self.now = datetime.min.replace(tzinfo=UTC)
        self._open = False
        self._firms: dict[FirmId, Firm] = {}
        self._r = _Records()
        self.firms = _Firms(self)
        self.models = _Models(self)
        self.accounts = _Accounts(self)
        self.holdings = _Holdings(self)
        self.prices = _Prices(self)
        self.cash_flows = _CashFlows(self)
        self.proposals = _Proposals(self)
        self.runs = _Runs(self)
        self.orders = _Orders(self)
        self.fills = _Fills(self)
        self.realised = _Realised(self)
        self.audit = _Audit(self)
        self.outbox = MemoryOutbox(lambda: self.records.outbox)
        self.policies = _Policies(self)

    def __enter__(self) -> Self:
        self._store._lock.acquire()
        self.now = self._store._clock.now().astimezone(UTC)
        self._firms = dict(self._store._firms)
        self._r = self._store._records.get(self.firm, _Records()).copy()
        self._open = True
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._open:
            self.rollback()

    @property
    def records(self) -> _Records:
        """The working copy; only inside the ``with`` block."""
        if not self._open:
            raise StoreError("a unit of work is used inside its `with` block, before it ends")
        return self._r

    def lock(self, name: str) -> None:
        """Held already: a unit of work holds the store's one lock from its start."""
        if not name:
            raise ValueError("a lock needs a name")
        _ = self.records

    def commit(self) -> None:
        """Swap the working copy in."""
        _ = self.records
        self._store._firms = self._firms
        self._store._records[self.firm] = self._r
        self._end()

    def rollback(self) -> None:
        """Drop the working copy."""
        _ = self.records
        self._end()

    def _end(self) -> None:
        self._open = False
        self._store._lock.release()

    def record(
        self, action: AuditAction, entity: Entity, key: str, before: object, after: object
    ) -> None:
        """Append an audit entry for one change."""
        self.records.audit.append(
            AuditEntry(
                at=self.now,
                actor=self.actor,
                reason=self.reason,
                action=action,
                entity=entity,
                key=key,
                before=None if before is None else record_json(before),
                after=None if after is None else record_json(after),
                firm=self.firm,
            )
        )


class _Repository:
    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        self._uow = uow

    @property
    def _r(self) -> _Records:
        return self._uow.records


class _Firms(_Repository):
    def get(self, firm: FirmId) -> Firm | None:
        _ = self._r
        return self._uow._firms.get(firm)

    def add(self, firm: Firm) -> None:
        _ = self._r
        if firm.id in self._uow._firms:
            raise Conflict(f"firm {firm.id!r} already exists")
        self._uow._firms[firm.id] = firm
        self._uow.record(AuditAction.CREATE, Entity.FIRM, firm.id, None, firm)

    def require(self) -> None:
        if self._uow.firm not in self._uow._firms:
            raise NotFound(f"firm {self._uow.firm!r} is not in the store")


class _Models(_Repository):
    def set_targets(self, model: ModelId, targets: Sequence[Target]) -> ModelVersion:
        self._uow.firms.require()
        versions = self._r.models.get(model, [])
        if versions and versions[-1].targets == tuple(targets):
            latest = versions[-1]
        else:
            latest = ModelVersion(
                model=model,
                version=len(versions) + 1,
                targets=tuple(targets),
                created_at=self._uow.now,
                firm=self._uow.firm,
            )
            self._r.models[model] = [*versions, latest]
            self._uow.record(
                AuditAction.CREATE, Entity.MODEL, f"{model}/{latest.version}", None, latest
            )
        if model in self._r.retired:
            self._r.retired.discard(model)
            self._uow.record(AuditAction.UPDATE, Entity.MODEL, model, "retired", "in the book")
        return latest

    def retire(self, model: ModelId) -> None:
        if model not in self._r.models:
            raise NotFound(f"model {model!r} is not stored")
        if model not in self._r.retired:
            self._r.retired.add(model)
            self._uow.record(AuditAction.UPDATE, Entity.MODEL, model, "in the book", "retired")

    def latest(self, model: ModelId) -> ModelVersion | None:
        versions = self._r.models.get(model)
        return versions[-1] if versions else None

    def version(self, model: ModelId, version: int) -> ModelVersion | None:
        return next((v for v in self._r.models.get(model, ()) if v.version == version), None)

    def history(self, model: ModelId) -> Sequence[ModelVersion]:
        return list(self._r.models.get(model, ()))

    def current(self) -> Sequence[ModelVersion]:
        return [v[-1] for m, v in self._r.models.items() if m not in self._r.retired]


class _Accounts(_Repository):
    def _with_pending(self, account: Account) -> Account:
        flows = (f for f in self._r.flows.values() if f.account == account.id)
        return replace(account, pending_cash=pending_total(flows))

    def get(self, account: AccountId) -> Account | None:
        found = self._r.accounts.get(account)
        return None if found is None else self._with_pending(found)

    def get_many(self, accounts: Sequence[AccountId]) -> Mapping[AccountId, Account]:
        return {a: found for a in accounts if (found := self.get(a)) is not None}

    def list(self, model: ModelId | None = None) -> Sequence[Account]:
        return [
            self._with_pending(a)
            for a in self._r.accounts.values()
            if a.closed_at is None and (model is None or a.model == model)
        ]

    def save(self, accounts: Sequence[Account]) -> None:
        self._uow.firms.require()
        for account in accounts:
            check_firm(self._uow.firm, account)
            if account.model is not None and account.model not in self._r.models:
                raise NotFound(f"account {account.id}: model {account.model!r} is not stored")
            before = self.get(account.id)
            if before == account:
                continue
            self._r.accounts[account.id] = replace(account, pending_cash=NO_MONEY)
            action = AuditAction.CREATE if before is None else AuditAction.UPDATE
            self._uow.record(action, Entity.ACCOUNT, account.id, before, account)
            if before is not None and before.pending_cash == account.pending_cash:
                continue
            for flow in self._uow.cash_flows.pending(account.id):
                self._uow.cash_flows.close(flow.id, CashFlowState.CANCELED)
            if account.pending_cash:
                self._uow.cash_flows.add(
                    CashFlow(
                        id=CashFlowId(uuid.uuid4().hex),
                        account=account.id,
                        amount=account.pending_cash,
                        created_at=self._uow.now,
                        note=RESTATED,
                    )
                )


class _Holdings(_Repository):
    def of(self, account: AccountId) -> Sequence[Holding]:
        return list(self._r.holdings.get(account, ()))

    def of_many(self, accounts: Sequence[AccountId]) -> Mapping[AccountId, Sequence[Holding]]:
        return {a: self.of(a) for a in accounts}

    def all(self) -> Sequence[Holding]:
        return [
            h
            for a in self._r.accounts.values()
            if a.closed_at is None
            for h in self._r.holdings.get(a.id, ())
        ]

    def replace(self, holdings: Mapping[AccountId, Sequence[Holding]]) -> Sequence[AccountId]:
        changed = []
        for account, rows in holdings.items():
            if account not in self._r.accounts:
                raise NotFound(f"account {account!r} is not stored")
            if any(h.account != account for h in rows):
                raise ValueError(f"holdings given for {account} name another account")
            before = self._r.holdings.get(account, [])
            if before == list(rows):
                continue
            self._r.holdings[account] = list(rows)
            changed.append(account)
            action = AuditAction.of(before, rows)
            self._uow.record(action, Entity.HOLDINGS, account, before or None, list(rows) or None)
        return changed

    def positions(self, account: AccountId) -> Mapping[Symbol, Quantity]:
        return positions_of(self._r.holdings.get(account, ()))

    def lots(self, account: AccountId) -> Sequence[TaxLot]:
        return lots_of(account, self._r.holdings.get(account, ()))


class _Prices(_Repository):
    def _current(self) -> dict[Symbol, _Quote]:
        return {q.price.symbol: q for q in self._r.quotes if q.until is None}

    def record(self, prices: Sequence[Price], *, replace_all: bool = False) -> None:
        self._uow.firms.require()
        current = self._current()
        check_new_quotes(prices, {s: q.price for s, q in current.items()})
        given = {p.symbol for p in prices}
        dropped = [q for s, q in current.items() if replace_all and s not in given]
        if not given and not dropped:
            return
        before = [q.price for q in current.values() if q.price.symbol in given or q in dropped]
        for price in prices:
            if price.symbol in current:
                current[price.symbol].until = price.at
            self._r.quotes.append(_Quote(price))
        for quote in dropped:
            quote.until = self._uow.now
        self._uow.record(AuditAction.UPDATE, Entity.PRICES, "", before, list(prices))

    def current(self) -> Sequence[Price]:
        return [q.price for q in self._r.quotes if q.until is None]

    def quotes(self, symbols: Iterable[Symbol], at: datetime) -> Mapping[Symbol, Price]:
        wanted = set(symbols)
        found: dict[Symbol, Price] = {}
        for q in self._r.quotes:
            p = q.price
            if p.symbol in wanted and p.at <= at and (q.until is None or q.until > at):
                found[p.symbol] = p
        return found

    def history(self, symbol: Symbol) -> Sequence[Price]:
        return sorted(
            (q.price for q in self._r.quotes if q.price.symbol == symbol), key=lambda p: p.at
        )


class _CashFlows(_Repository):
    def add(self, flow: CashFlow) -> None:
        if flow.id in self._r.flows:
            raise Conflict(f"cash flow {flow.id!r} already exists")
        if flow.account not in self._r.accounts:
            raise NotFound(f"cash flow {flow.id}: account {flow.account!r} is not stored")
        if flow.state is not CashFlowState.PENDING:
            raise ValueError(f"cash flow {flow.id}: a new flow is pending")
        self._r.flows[flow.id] = flow
        self._uow.record(AuditAction.CREATE, Entity.CASH_FLOW, flow.id, None, flow)

    def get(self, flow: CashFlowId) -> CashFlow | None:
        return self._r.flows.get(flow)

    def pending(self, account: AccountId | None = None) -> Sequence[CashFlow]:
        return sorted(
            (
                f
                for f in self._r.flows.values()
                if f.state is CashFlowState.PENDING and (account is None or f.account == account)
            ),
            key=lambda f: f.created_at,
        )

    def close(self, flow: CashFlowId, state: CashFlowState) -> CashFlow:
        before = self._r.flows.get(flow)
        if before is None:
            raise NotFound(f"cash flow {flow!r} is not stored")
        if before.state is not CashFlowState.PENDING or state is CashFlowState.PENDING:
            raise ValueError(f"cash flow {flow} is {before.state}; only a pending flow closes")
        after = replace(before, state=state, closed_at=self._uow.now)
        self._r.flows[flow] = after
        self._uow.record(AuditAction.UPDATE, Entity.CASH_FLOW, flow, before, after)
        return after


class _Proposals(_Repository):
    def add(self, proposal: Proposal) -> None:
        self._uow.firms.require()
        check_firm(self._uow.firm, proposal)
        if proposal.id in self._r.proposals:
            raise Conflict(f"proposal {proposal.id!r} already exists")
        self._r.proposals[proposal.id] = proposal
        self._uow.record(AuditAction.CREATE, Entity.PROPOSAL, proposal.id, None, proposal)

    def get(self, proposal: ProposalId) -> Proposal | None:
        return self._r.proposals.get(proposal)

    def list(self) -> Sequence[Proposal]:
        return sorted(
            reversed(self._r.proposals.values()), key=lambda p: p.created_at, reverse=True
        )


class _Runs(_Repository):
    def start(self, run: Run, reason: str) -> tuple[Run, bool]:
        self._uow.firms.require()
        check_firm(self._uow.firm, run)
        check_start(run)
        existing = self._r.run_keys.get(run.key)
        if existing is not None:
            return self._r.runs[existing], False
        if run.id in self._r.runs:
            raise Conflict(f"run {run.id!r} already exists with another key")
        if run.proposal is not None and run.proposal not in self._r.proposals:
            raise NotFound(f"run {run.id}: proposal {run.proposal!r} is not stored")
        self._r.runs[run.id] = run
        self._r.run_keys[run.key] = run.id
        self._r.events[run.id] = [
            RunEvent(run=run.id, at=run.created_at, state=run.state, reason=reason)
        ]
        self._uow.record(AuditAction.CREATE, Entity.RUN, run.id, None, run)
        return run, True

    def get(self, run: RunId, *, for_update: bool = False) -> Run | None:
        return self._r.runs.get(run)

    def find(self, key: RunKey) -> Run | None:
        found = self._r.run_keys.get(key)
        return None if found is None else self._r.runs[found]

    def list(self, state: RunState | None = None) -> Sequence[Run]:
        return sorted(
            (r for r in self._r.runs.values() if state is None or r.state is state),
            key=lambda r: r.created_at,
        )

    def _stored(self, run: RunId) -> Run:
        found = self._r.runs.get(run)
        if found is None:
            raise NotFound(f"run {run!r} is not stored")
        return found

    def transition(self, run: RunId, state: RunState, at: datetime, reason: str) -> Run:
        before = self._stored(run)
        check_transition(run, before.state, state)
        after = replace(before, state=state, reason=reason, updated_at=at)
        self._r.runs[run] = after
        self._r.events[run].append(RunEvent(run=run, at=at, state=state, reason=reason))
        self._uow.record(AuditAction.UPDATE, Entity.RUN, run, before, after)
        return after

    def note(self, run: RunId, at: datetime, reason: str) -> None:
        stored = self._stored(run)
        self._r.events[run].append(RunEvent(run=run, at=at, state=stored.state, reason=reason))

    def events(self, run: RunId) -> Sequence[RunEvent]:
        return list(self._r.events.get(run, ()))


class _Orders(_Repository):
    def add(self, orders: Sequence[Order]) -> None:
        ids = [o.client_order_id for o in orders]
        known = [i for i in ids if i in self._r.orders]
        if known or len(set(ids)) != len(ids):
            raise Conflict(f"client order id already stored: {(known or ids)[0]}")
        for order in orders:
            if order.account not in self._r.accounts:
                raise NotFound(
                    f"order {order.client_order_id}: account {order.account!r} is not stored"
                )
            if order.run is not None and order.run not in self._r.runs:
                raise NotFound(f"order {order.client_order_id}: run {order.run!r} is not stored")
            if order.parent is not None and order.parent not in self._r.orders:
                raise NotFound(
                    f"order {order.client_order_id}: parent {order.parent!r} is not stored"
                )
            self._r.orders[order.client_order_id] = order
            self._uow.record(AuditAction.CREATE, Entity.ORDER, order.client_order_id, None, order)

    def get(self, order: ClientOrderId, *, for_update: bool = False) -> Order | None:
        return self._r.orders.get(order)

    def for_run(self, run: RunId) -> Sequence[Order]:
        return [o for o in self._r.orders.values() if o.run == run]

    def working(self) -> Sequence[Order]:
        return [o for o in self._r.orders.values() if not o.state.terminal]

    def update(self, orders: Sequence[Order]) -> None:
        for order in orders:
            before = self._r.orders.get(order.client_order_id)
            if before is None:
                raise NotFound(f"order {order.client_order_id!r} is not stored")
            check_update(before, order)
            if before != order:
                self._r.orders[order.client_order_id] = order
                self._uow.record(
                    AuditAction.UPDATE, Entity.ORDER, order.client_order_id, before, order
                )


class _Fills(_Repository):
    def add(self, fills: Sequence[Fill]) -> Sequence[Fill]:
        new: list[Fill] = []
        for fill in fills:
            known = self._r.fills.get(fill.id)
            if known is not None:
                if known != fill:
                    raise Conflict(f"fill {fill.id!r} was reported before with other values")
                continue
            if fill.client_order_id not in self._r.orders:
                raise NotFound(f"fill {fill.id}: order {fill.client_order_id!r} is not stored")
            self._r.fills[fill.id] = fill
            self._uow.record(AuditAction.CREATE, Entity.FILL, fill.id, None, fill)
            new.append(fill)
        return new

    def for_order(self, order: ClientOrderId) -> Sequence[Fill]:
        return [f for f in self._r.fills.values() if f.client_order_id == order]

    def for_orders(self, orders: Sequence[ClientOrderId]) -> Mapping[ClientOrderId, Sequence[Fill]]:
        wanted: dict[ClientOrderId, list[Fill]] = {o: [] for o in orders}
        for fill in self._r.fills.values():
            if fill.client_order_id in wanted:
                wanted[fill.client_order_id].append(fill)
        return wanted


class _Realised(_Repository):
    def add(self, lots: Sequence[RealisedLot]) -> None:
        for lot in lots:
            key = (lot.fill, lot.part)
            if key in self._r.realised:
                raise Conflict(f"fill {lot.fill} part {lot.part} was recorded before")
            if lot.fill not in self._r.fills:
                raise NotFound(f"fill {lot.fill!r} is not stored (named by what it realised)")
            self._r.realised[key] = lot
            self._uow.record(
                AuditAction.CREATE, Entity.REALISED, f"{lot.fill}/{lot.part}", None, lot
            )

    def since(self, day: date) -> Sequence[RealisedLot]:
        return [lot for key, lot in sorted(self._r.realised.items()) if lot.sold >= day]


class _Audit(_Repository):
    def entries(self, entity: Entity | None = None, key: str | None = None) -> Sequence[AuditEntry]:
        return [
            e
            for e in self._r.audit
            if (entity is None or e.entity is entity) and (key is None or e.key == key)
        ]


def _fractions(values: Iterable[Decimal | None]) -> npt.NDArray[np.float64]:
    """Bands as the tick's floats, NaN where not set."""
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


class _Policies(_Repository):
    def replace(self, policies: Sequence[InvestmentPolicy]) -> int:
        missing = [p.account for p in policies if p.account not in self._r.accounts]
        if missing:
            raise NotFound(f"policy of account {missing[0]!r}, which is not stored")
        before, given = self._r.policies, {p.account: p for p in policies}
        changes = changed_records(before, given)
        for account, old, new in changes:
            self._uow.record(AuditAction.of(old, new), Entity.POLICY, account, old, new)
        self._r.policies = given
        return len(changes)

    def all(self) -> Sequence[InvestmentPolicy]:
        return list(self._r.policies.values())

    def get(self, account: AccountId) -> InvestmentPolicy | None:
        return self._r.policies.get(account)

    def marks(self) -> Mapping[AccountId, ScheduleMark]:
        return dict(self._r.marks)

    def mark(self, mark: ScheduleMark) -> None:
        if mark.account not in self._r.accounts:
            raise NotFound(f"schedule mark of account {mark.account!r}, which is not stored")
        before = self._r.marks.pop(mark.account, None)
        empty = mark.instant_requested_at is None and mark.postponed_until is None
        if not empty:
            self._r.marks[mark.account] = mark
        if before != (None if empty else mark):
            self._uow.record(
                AuditAction.UPDATE, Entity.SCHEDULE, mark.account, before, None if empty else mark
            )

    def last_runs(self) -> Mapping[AccountId, LastRun]:
        found: dict[AccountId, LastRun] = {}
        for run in self._r.runs.values():
            proposal = self._r.proposals.get(run.proposal) if run.proposal else None
            if proposal is None or run.state in (RunState.CANCELED, RunState.ERROR):
                continue
            for outcome in proposal.accounts:
                seen = found.get(outcome.account)
                versions = [v for v in (outcome.model_version, seen and seen.model_version) if v]
                at = proposal.as_of if seen is None else max(seen.at, proposal.as_of)
                found[outcome.account] = LastRun(at=at, model_version=max(versions, default=None))
        return found

    def schedule_facts(self) -> ScheduleFacts:
        accounts = [a for a in self._r.accounts.values() if a.closed_at is None]
        policies = [self._r.policies.get(a.id) or default_policy(a.id) for a in accounts]
        marks = [self._r.marks.get(a.id) for a in accounts]
        last = self.last_runs()
        latest = {m: versions[-1].version for m, versions in self._r.models.items() if versions}
        runs = [last.get(a.id) for a in accounts]
        flows = self._uow.cash_flows.pending()
        return ScheduleFacts(
            account=np.array([a.id for a in accounts], dtype=object),
            can_trade=np.array([a.can_trade for a in accounts], dtype=bool),
            cash_pending=np.array(
                [pending_total(f for f in flows if f.account == a.id) != 0 for a in accounts],
                dtype=bool,
            ),
            program=np.array([p.program.value for p in policies], dtype=object),
            trigger=np.array([p.trigger.value for p in policies], dtype=object),
            frequency=np.array([p.frequency.value for p in policies], dtype=object),
            day=np.array([p.day for p in policies], dtype="datetime64[D]"),
            band_abs=_fractions(p.band_abs for p in policies),
            band_rel=_fractions(p.band_rel for p in policies),
            cadence_days=np.array([p.cadence_days for p in policies], dtype=np.int32),
            cooldown_days=np.array([p.cooldown_days for p in policies], dtype=np.int32),
            last_run_at=instants([None if r is None else r.at for r in runs]),
            model_changed=np.array(
                [
                    r is not None
                    and a.model is not None
                    and r.model_version is not None
                    and latest.get(a.model, 0) > r.model_version
                    for a, r in zip(accounts, runs, strict=True)
                ],
                dtype=bool,
            ),
            instant_requested=np.array(
                [m is not None and m.instant_requested_at is not None for m in marks], dtype=bool
            ),
            postponed_until=instants([None if m is None else m.postponed_until for m in marks]),
            wide_band_abs=_fractions(p.wide_band_abs for p in policies),
            wide_band_rel=_fractions(p.wide_band_rel for p in policies),
        )
