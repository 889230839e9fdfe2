"""The storage port: a unit of work over repositories of the book, the runs and the orders.

A :class:`Store` opens a :class:`UnitOfWork` for one firm, by an actor, for a reason: one
transaction. Everything read inside it is consistent; everything written becomes visible at
:meth:`UnitOfWork.commit` and not at all if the unit of work ends without it (an exception, a
crash, a rollback). Every change a repository makes appends an audit entry
(:class:`rebal.domain.audit.AuditEntry`) with the unit of work's actor, reason and instant, so
the audit trail is complete by construction.

The repositories speak the domain's records only; no adapter type crosses this port. The
contract tests in ``tests/integration/adapters/storage/`` hold every implementation (SQLite,
PostgreSQL, in memory) to the same behaviour.

Concurrency: two units of work that must not interleave (two processes resuming one run) take
the same named lock (:meth:`UnitOfWork.lock`) or read the row they will change with
``for_update=True``; both hold until the unit of work ends. On SQLite a writing unit of work
holds the database's write lock from its start, which serialises them anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime
from types import TracebackType
from typing import Protocol, Self

from rebal.domain.account import Account, Holding, ModelVersion, Price, Target, TaxLot
from rebal.domain.audit import AuditEntry, Entity
from rebal.domain.cash import CashFlow, CashFlowState
from rebal.domain.firm import Firm
from rebal.domain.ids import (
    DEFAULT_FIRM,
    AccountId,
    CashFlowId,
    ClientOrderId,
    FirmId,
    ModelId,
    ProposalId,
    RunId,
    Symbol,
)
from rebal.domain.money import Quantity
from rebal.domain.order import Fill, Order
from rebal.domain.proposal import Proposal
from rebal.domain.run import Run, RunEvent, RunKey, RunState
from rebal.ports.outbox import Outbox
from rebal.ports.policies import PolicyRepository
from rebal.tax.realised import RealisedLot


class StoreError(Exception):
    """The store could not do what was asked; the message says what and what to do."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or opened."""


class SchemaNotCurrent(StoreError):
    """The database has no rebal schema, or an older or newer one than this rebal knows."""


class Conflict(StoreError):
    """A record with this key is already stored (a client order id, a firm)."""


class NotFound(StoreError, LookupError):
    """A record the change refers to is not stored."""


class FirmRepository(Protocol):
    """The tenants. The firm of a unit of work must exist before anything is stored for it."""

    def get(self, firm: FirmId) -> Firm | None:
        """The firm, ``None`` when unknown."""
        ...

    def add(self, firm: Firm) -> None:
        """Store a new firm; :class:`Conflict` when its id is taken."""
        ...


class ModelRepository(Protocol):
    """Models as versions: a change of targets is a new version, the old ones kept."""

    def set_targets(self, model: ModelId, targets: Sequence[Target]) -> ModelVersion:
        """The model with these targets, in this order: its latest version when that has
        exactly these, else a new version (1 for a new model). A retired model is back in the
        book."""
        ...

    def retire(self, model: ModelId) -> None:
        """Take the model out of the book (its versions stay, for history)."""
        ...

    def latest(self, model: ModelId) -> ModelVersion | None:
        """The newest version, retired or not; ``None`` for an unknown model."""
        ...

    def version(self, model: ModelId, version: int) -> ModelVersion | None:
        """One version, ``None`` when there is no such version."""
        ...

    def history(self, model: ModelId) -> Sequence[ModelVersion]:
        """Every version, oldest first."""
        ...

    def current(self) -> Sequence[ModelVersion]:
        """The latest version of every model in the book (not retired), in book order (the
        order models were first stored)."""
        ...


class AccountRepository(Protocol):
    """Accounts, with their cash balance and pending cash."""

    def get(self, account: AccountId) -> Account | None:
        """The account, open or closed; ``None`` when unknown."""
        ...

    def get_many(self, accounts: Sequence[AccountId]) -> Mapping[AccountId, Account]:
        """Each of ``accounts`` that is stored (open or closed), read at once."""
        ...

    def list(self, model: ModelId | None = None) -> Sequence[Account]:
        """The open accounts (of ``model``), in book order (the order first stored)."""
        ...

    def save(self, accounts: Sequence[Account]) -> None:
        """Store each account as given: created, or updated when it differs. Its
        ``pending_cash`` is the sum of its pending cash flows: a different amount cancels them
        and records one pending flow of the new amount (none for zero). ``closed_at`` closes
        (or, ``None``, reopens) the account. The account's model must be stored."""
        ...


class HoldingRepository(Protocol):
    """Positions and tax lots: the rows of holdings.csv, each a quantity of one security in one
    account, a tax lot when it has a cost basis and an acquired date."""

    def of(self, account: AccountId) -> Sequence[Holding]:
        """The account's holdings in their order."""
        ...

    def of_many(self, accounts: Sequence[AccountId]) -> Mapping[AccountId, Sequence[Holding]]:
        """Each of ``accounts``' holdings in their order (none: empty), read at once."""
        ...

    def all(self) -> Sequence[Holding]:
        """Every holding of every open account: accounts in book order, each one's in order."""
        ...

    def replace(self, holdings: Mapping[AccountId, Sequence[Holding]]) -> Sequence[AccountId]:
        """Each named account now holds exactly these (in this order; empty: nothing); returns
        the accounts whose holdings changed. Accounts not named are untouched; an account whose
        holdings are unchanged is not rewritten."""
        ...

    def positions(self, account: AccountId) -> Mapping[Symbol, Quantity]:
        """Shares held per symbol (the sum of its rows), symbols in holding order."""
        ...

    def lots(self, account: AccountId) -> Sequence[TaxLot]:
        """The holdings that are tax lots; a lot's id is ``ACCOUNT/N`` (its place among the
        account's holdings, from 1), valid until the holdings are next replaced."""
        ...


class PriceRepository(Protocol):
    """Quoted prices with their time, history kept. Each quote is current from its instant
    until a later one of its symbol supersedes it (or a new price list drops the symbol); it
    is also a :class:`rebal.ports.prices.PriceSource` over that history."""

    def record(self, prices: Sequence[Price], *, replace_all: bool = False) -> None:
        """New quotes, each superseding its symbol's current quote. With ``replace_all`` the
        price list becomes exactly these: symbols left out have no current price from the
        unit of work's instant on. A quote older than its symbol's current one is refused."""
        ...

    def current(self) -> Sequence[Price]:
        """The current quotes, in the order they were recorded."""
        ...

    def quotes(self, symbols: Iterable[Symbol], at: datetime) -> Mapping[Symbol, Price]:
        """The quote of each symbol that was current at ``at``; symbols without one are absent."""
        ...

    def history(self, symbol: Symbol) -> Sequence[Price]:
        """Every quote of ``symbol`` ever recorded, oldest first."""
        ...


class CashFlowRepository(Protocol):
    """Announced deposits and withdrawals."""

    def add(self, flow: CashFlow) -> None:
        """Store a new pending flow; :class:`Conflict` when its id is taken."""
        ...

    def get(self, flow: CashFlowId) -> CashFlow | None:
        """The flow, ``None`` when unknown."""
        ...

    def pending(self, account: AccountId | None = None) -> Sequence[CashFlow]:
        """Pending flows (of ``account``), oldest first."""
        ...

    def close(self, flow: CashFlowId, state: CashFlowState) -> CashFlow:
        """Settle or cancel a pending flow as of the unit of work's instant."""
        ...


class ProposalRepository(Protocol):
    """Proposals as made."""

    def add(self, proposal: Proposal) -> None:
        """Store a proposal; :class:`Conflict` when its id is taken."""
        ...

    def get(self, proposal: ProposalId) -> Proposal | None:
        """The proposal with its accounts and orders, ``None`` when unknown."""
        ...

    def list(self) -> Sequence[Proposal]:
        """Every proposal, newest first."""
        ...


class RunRepository(Protocol):
    """Runs, their states and their events."""

    def start(self, run: Run, reason: str) -> tuple[Run, bool]:
        """Store a new queued run with its first event, unless a run with its key exists:
        ``(the stored run, whether it is new)``. Safe against a concurrent start of the same
        key: exactly one of them creates it."""
        ...

    def get(self, run: RunId, *, for_update: bool = False) -> Run | None:
        """The run; ``for_update`` locks its row until the unit of work ends."""
        ...

    def find(self, key: RunKey) -> Run | None:
        """The run with this key, ``None`` when there is none."""
        ...

    def list(self, state: RunState | None = None) -> Sequence[Run]:
        """Runs (in ``state``), oldest first."""
        ...

    def transition(self, run: RunId, state: RunState, at: datetime, reason: str) -> Run:
        """Move the run to ``state`` if its table allows it (else
        :class:`~rebal.domain.run.IllegalRunTransition`), with an event."""
        ...

    def note(self, run: RunId, at: datetime, reason: str) -> None:
        """An event that keeps the run's state (an order delayed, a retry)."""
        ...

    def events(self, run: RunId) -> Sequence[RunEvent]:
        """The run's events in the order they happened."""
        ...


class OrderRepository(Protocol):
    """Orders: intents first, then as far as the broker has taken them."""

    def add(self, orders: Sequence[Order]) -> None:
        """Store new orders (the intent, before anything is sent; a parent before its
        children); :class:`Conflict` when a client order id is already stored."""
        ...

    def get(self, order: ClientOrderId, *, for_update: bool = False) -> Order | None:
        """The order; ``for_update`` locks its row until the unit of work ends."""
        ...

    def for_run(self, run: RunId) -> Sequence[Order]:
        """The run's orders in the order they were added."""
        ...

    def working(self) -> Sequence[Order]:
        """Every order not in a terminal state, in the order they were added."""
        ...

    def update(self, orders: Sequence[Order]) -> None:
        """Store the new state of stored orders. Each move must be legal from the stored state
        (:func:`rebal.domain.order.check_transition`); what identifies an order (account,
        symbol, side, size, run) cannot change. :class:`NotFound` for an unknown order."""
        ...


class FillRepository(Protocol):
    """Executions as the broker reported them."""

    def add(self, fills: Sequence[Fill]) -> Sequence[Fill]:
        """Record the fills not recorded before (a fill reported twice is kept once); returns
        those that were new. Each fill's order must be stored."""
        ...

    def for_order(self, order: ClientOrderId) -> Sequence[Fill]:
        """The order's fills in the order recorded."""
        ...

    def for_orders(self, orders: Sequence[ClientOrderId]) -> Mapping[ClientOrderId, Sequence[Fill]]:
        """Each of ``orders``' fills in the order recorded (none: empty), read at once."""
        ...


class RealisedRepository(Protocol):
    """What each sell fill realised, lot by lot (:mod:`rebal.tax.realised`): written when
    the fill is applied to the book, read by the wash-sale check."""

    def add(self, lots: Sequence[RealisedLot]) -> None:
        """Record the parts of sell fills; each fill must be stored, and a part recorded before
        is a :class:`Conflict`."""
        ...

    def since(self, day: date) -> Sequence[RealisedLot]:
        """The parts of the sales made on or after ``day``, by fill and part."""
        ...


class AuditTrail(Protocol):
    """The trail of every change, read only: the repositories write it."""

    def entries(self, entity: Entity | None = None, key: str | None = None) -> Sequence[AuditEntry]:
        """Entries (about ``entity``, ``key``), oldest first."""
        ...


class UnitOfWork(Protocol):
    """One transaction of one firm, by one actor for one reason, at one instant."""

    @property
    def firm(self) -> FirmId:
        """The firm every record read or written belongs to."""
        ...

    @property
    def actor(self) -> str:
        """Who makes the changes (the audit's "who")."""
        ...

    @property
    def reason(self) -> str:
        """Why (the audit's "why")."""
        ...

    @property
    def now(self) -> datetime:
        """The instant of the unit of work (UTC): every change it makes is stamped with it."""
        ...

    @property
    def firms(self) -> FirmRepository: ...
    @property
    def models(self) -> ModelRepository: ...
    @property
    def accounts(self) -> AccountRepository: ...
    @property
    def holdings(self) -> HoldingRepository: ...
    @property
    def prices(self) -> PriceRepository: ...
    @property
    def cash_flows(self) -> CashFlowRepository: ...
    @property
    def proposals(self) -> ProposalRepository: ...
    @property
    def runs(self) -> RunRepository: ...
    @property
    def orders(self) -> OrderRepository: ...
    @property
    def fills(self) -> FillRepository: ...
    @property
    def realised(self) -> RealisedRepository:
        """What each sell fill realised (:class:`RealisedRepository`)."""
        ...

    @property
    def audit(self) -> AuditTrail: ...
    @property
    def outbox(self) -> Outbox:
        """Notifications to send, added in the transaction of the event they report."""
        ...

    @property
    def policies(self) -> PolicyRepository:
        """Investment policies and the scheduler's marks (:mod:`rebal.ports.policies`)."""
        ...

    def lock(self, name: str) -> None:
        """Wait for, then hold until the unit of work ends, the lock called ``name`` (of this
        firm): a second unit of work asking for it waits until the first has ended."""
        ...

    def commit(self) -> None:
        """Make every change visible, at once; the unit of work is then over."""
        ...

    def rollback(self) -> None:
        """Drop every change; the unit of work is then over."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        """End the unit of work: without a commit, nothing it changed is kept."""
        ...


class Store(Protocol):
    """Where the book, the runs and the orders are kept."""

    def unit_of_work(self, *, actor: str, reason: str, firm: FirmId = DEFAULT_FIRM) -> UnitOfWork:
        """Begin a unit of work (use it as a context manager)."""
        ...

    def claim(self, name: str) -> AbstractContextManager[None]:
        """Hold the claim ``name`` across units of work until the ``with`` block ends, waiting
        while another process or thread holds it; a claim held by a process that died is free
        again (what keeps two processes from trading one run at once)."""
        ...
