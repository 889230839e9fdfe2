"""Reconciliation: rebal's book against the broker's record, and a run's allocation against
the one intended.

Two independent records say what each account holds: rebal's book (the store) and the broker's
ledger. :func:`compare` lists, for one account, every way two :class:`Holdings` snapshots
differ (a position only one side has, a quantity that differs, cash that differs), comparing
exact decimals: a difference of a cent or of 10^-9 share is a difference, and a float is refused
rather than compared. :func:`reconcile` is the use case: it reads the book through the unit of
work and the broker through its port, and compares each account the broker keeps.

:func:`check_allocation` measures, after a run, the weights an account reached against those it
was meant to reach: within :data:`ALLOCATION_TOLERANCE` (half a percentage point) per position,
else the account is flagged with the reason; :func:`run_allocation` measures every account a run
traded against what its proposal intended; :func:`flag_run` and :func:`note_breaks` record flags
and reconciliation breaks on the run as events, :func:`run_flags` reads them back and
:func:`allocation_flags` gives those still standing. All are pure or go through the ports only,
so every entry point (the command line, the run layer, the REST API) calls the same code.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from rebal.domain.account import positions_of
from rebal.domain.ids import CASH, AccountId, RunId, Symbol
from rebal.domain.money import NO_MONEY, Money, Quantity
from rebal.domain.order import Side
from rebal.domain.run import Run, RunEvent
from rebal.ports.broker import ReportsHoldings
from rebal.ports.storage import UnitOfWork

#: How far a reached weight may be from the intended one: 0.5 percentage points.
ALLOCATION_TOLERANCE = Decimal("0.005")


class ReconcileError(ValueError):
    """Reconciliation cannot start: the message says why (an unknown account, a broker that
    keeps no account)."""


def _exact(value: object, what: str) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise TypeError(f"{what} must be a finite Decimal, not {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Holdings:
    """What one record says an account holds: settled cash and shares per symbol (a zero
    quantity is no position). Values are exact decimals; anything else is refused."""

    cash: Money
    positions: Mapping[Symbol, Quantity] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _exact(self.cash, "cash")
        for symbol, quantity in self.positions.items():
            _exact(quantity, f"the quantity of {symbol}")


class DifferenceKind(StrEnum):
    """How the book and the broker disagree about an account."""

    MISSING_AT_BROKER = "missing_at_broker"  # the book holds the symbol, the broker does not
    MISSING_IN_BOOK = "missing_in_book"  # the broker holds the symbol, the book does not
    QUANTITY = "quantity"  # both hold the symbol, in different quantities
    CASH = "cash"  # the cash differs
    ACCOUNT_MISSING_AT_BROKER = "account_missing_at_broker"  # the broker keeps no such account
    ACCOUNT_MISSING_IN_BOOK = "account_missing_in_book"  # the book has no such open account


@dataclass(frozen=True, slots=True)
class Difference:
    """One disagreement: for a position, ``symbol`` and the quantities; for cash, the amounts
    (``symbol`` is ``None``); for a whole account, neither (``book``/``broker`` ``None``). A side
    that holds nothing of the symbol says ``None``."""

    account: AccountId
    kind: DifferenceKind
    symbol: Symbol | None = None
    book: Decimal | None = None
    broker: Decimal | None = None

    @property
    def difference(self) -> Decimal | None:
        """The broker's value less the book's (a missing side counts as zero); ``None`` for a
        whole account."""
        if self.book is None and self.broker is None:
            return None
        return (self.broker or Decimal(0)) - (self.book or Decimal(0))


def compare(account: AccountId, book: Holdings, broker: Holdings) -> tuple[Difference, ...]:
    """Every difference between the book's and the broker's holdings of ``account``: cash
    first, then positions in the book's order, then the broker's others. Exact: equal decimals
    (``6`` and ``6.000``) agree, anything else differs."""
    found: list[Difference] = []
    if book.cash != broker.cash:
        found.append(Difference(account, DifferenceKind.CASH, None, book.cash, broker.cash))
    held = {s: q for s, q in book.positions.items() if q != 0}
    theirs = {s: q for s, q in broker.positions.items() if q != 0}
    for symbol, quantity in held.items():
        other = theirs.get(symbol)
        if other is None:
            found.append(
                Difference(account, DifferenceKind.MISSING_AT_BROKER, symbol, quantity, None)
            )
        elif other != quantity:
            found.append(Difference(account, DifferenceKind.QUANTITY, symbol, quantity, other))
    for symbol, quantity in theirs.items():
        if symbol not in held:
            found.append(
                Difference(account, DifferenceKind.MISSING_IN_BOOK, symbol, None, quantity)
            )
    return tuple(found)


@dataclass(frozen=True, slots=True)
class AccountReconciliation:
    """One account compared: both records and their differences (none: it reconciles)."""

    account: AccountId
    book: Holdings | None
    broker: Holdings | None
    differences: tuple[Difference, ...]

    @property
    def reconciled(self) -> bool:
        """Whether the two records agree exactly."""
        return not self.differences


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """The accounts compared, in the book's order (then the broker's others), and the book's
    open accounts the broker has never opened (not compared: they have not traded)."""

    accounts: tuple[AccountReconciliation, ...]
    unopened: tuple[AccountId, ...] = ()

    @property
    def reconciled(self) -> bool:
        """Whether every account compared agrees exactly."""
        return all(a.reconciled for a in self.accounts)

    @property
    def differences(self) -> tuple[Difference, ...]:
        """Every difference of every account, in order."""
        return tuple(d for a in self.accounts for d in a.differences)


class BrokerHoldings(Protocol):
    """What reconciliation asks a broker (the part of :class:`rebal.ports.broker.Broker` it
    uses): the accounts it keeps, each one's positions and settled cash (all at once when the
    broker also :class:`~rebal.ports.broker.ReportsHoldings`)."""

    def accounts(self) -> Sequence[AccountId]: ...
    def positions(self, account: AccountId) -> Mapping[Symbol, Quantity]: ...
    def cash(self, account: AccountId) -> Money: ...


def book_holdings(uow: UnitOfWork) -> dict[AccountId, Holdings]:
    """The book's open accounts, in book order, with their cash and positions."""
    rows = defaultdict(list)
    for holding in uow.holdings.all():
        rows[holding.account].append(holding)
    return {a.id: Holdings(a.cash, positions_of(rows.get(a.id, ()))) for a in uow.accounts.list()}


def broker_holdings(
    broker: BrokerHoldings, accounts: Sequence[AccountId]
) -> dict[AccountId, Holdings]:
    """What ``broker`` holds of each of ``accounts`` (all kept by it), in one request when it
    :class:`~rebal.ports.broker.ReportsHoldings`."""
    if isinstance(broker, ReportsHoldings):
        reported = broker.holdings(accounts)
        return {a: Holdings(cash, dict(positions)) for a, (cash, positions) in reported.items()}
    return {a: Holdings(broker.cash(a), dict(broker.positions(a))) for a in accounts}


def reconcile(
    book: Mapping[AccountId, Holdings],
    broker: BrokerHoldings,
    account: AccountId | None = None,
) -> Reconciliation:
    """Compare ``book`` (:func:`book_holdings`) with what ``broker`` holds: every account the
    broker keeps (or only ``account``). A book account the broker never opened is listed as
    unopened, unless it is the one asked for: then it is a difference. Raises
    :class:`ReconcileError` for an account neither side knows and for a broker that keeps no
    account at all (nothing to compare with)."""
    kept = list(broker.accounts())
    if not kept:
        raise ReconcileError(
            "the broker keeps no account (its ledger is empty): nothing to reconcile the book with"
        )
    at_broker = set(kept)
    if account is not None:
        if account not in book and account not in at_broker:
            raise ReconcileError(
                f"unknown account {account}: neither the book nor the broker has it"
            )
        names: Iterable[AccountId] = [account]
        unopened: tuple[AccountId, ...] = ()
    else:
        names = [a for a in book if a in at_broker] + [a for a in kept if a not in book]
        unopened = tuple(a for a in book if a not in at_broker)
    held = broker_holdings(broker, [n for n in names if n in at_broker])
    results = []
    for name in names:
        ours = book.get(name)
        theirs = held.get(name)
        if ours is None:
            found: tuple[Difference, ...] = (
                Difference(name, DifferenceKind.ACCOUNT_MISSING_IN_BOOK),
            )
        elif theirs is None:
            found = (Difference(name, DifferenceKind.ACCOUNT_MISSING_AT_BROKER),)
        else:
            found = compare(name, ours, theirs)
        results.append(AccountReconciliation(name, ours, theirs, found))
    return Reconciliation(tuple(results), unopened)


# -- the allocation a run reached ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PositionWeight:
    """One position's weight after a run against the weight intended (fractions; ``reached``
    is ``None`` when it cannot be measured: no price)."""

    symbol: Symbol
    intended: Decimal
    reached: Decimal | None

    @property
    def off_by(self) -> Decimal | None:
        """Reached less intended, ``None`` when not measured."""
        return None if self.reached is None else self.reached - self.intended


@dataclass(frozen=True, slots=True)
class AllocationCheck:
    """An account's allocation after a run: each position's weights (intended ones first, in
    their order, then positions held without a target, then cash as :data:`CASH`) and, when it
    is off target, the reason it is flagged."""

    account: AccountId
    weights: tuple[PositionWeight, ...]
    reason: str = ""

    @property
    def flagged(self) -> bool:
        """Whether the allocation is off target (or cannot be measured)."""
        return bool(self.reason)


def _pp(fraction: Decimal) -> str:
    return f"{fraction * 100:.2f}"


def check_allocation(
    account: AccountId,
    intended: Mapping[Symbol, Decimal],
    positions: Mapping[Symbol, Quantity],
    prices: Mapping[Symbol, Decimal],
    cash: Money,
    tolerance: Decimal = ALLOCATION_TOLERANCE,
) -> AllocationCheck:
    """The weights ``account`` reached (``positions`` valued at ``prices``, plus ``cash``)
    against the ``intended`` weights (fractions; :data:`CASH` for the cash kept, absent: none):
    flagged when any position's weight is more than ``tolerance`` away from its intended one
    (a held symbol without a target is intended at zero), when a held symbol has no price or
    when the account has no value. Exact decimals throughout; the reason gives each offending
    position in percent with two decimals."""
    _exact(cash, "cash")
    symbols = [s for s in intended if s != CASH]
    symbols += [s for s in positions if s not in intended and s != CASH and positions[s] != 0]
    values: dict[Symbol, Decimal | None] = {}
    for symbol in symbols:
        quantity = _exact(positions.get(symbol, Decimal(0)), f"the quantity of {symbol}")
        price = prices.get(symbol)
        if quantity == 0:
            values[symbol] = Decimal(0)
        elif price is None:
            values[symbol] = None
        else:
            values[symbol] = quantity * _exact(price, f"the price of {symbol}")
    unpriced = [s for s, v in values.items() if v is None]
    total = cash + sum((v for v in values.values() if v is not None), Decimal(0))
    weight = {
        s: _exact(intended.get(s, Decimal(0)), f"the intended weight of {s}")
        for s in [*symbols, CASH]
    }
    if unpriced or total <= 0:
        reason = (
            f"account {account}: no price for {', '.join(unpriced)}, the allocation cannot be "
            "measured"
            if unpriced
            else f"account {account} has no value: the allocation cannot be measured"
        )
        rows = [PositionWeight(s, weight[s], None) for s in [*symbols, CASH]]
        return AllocationCheck(account, tuple(rows), reason)
    reached = {s: v / total for s, v in values.items() if v is not None}
    reached[CASH] = cash / total
    rows = [PositionWeight(s, weight[s], reached[s]) for s in [*symbols, CASH]]
    off = [r for r in rows if r.off_by is not None and abs(r.off_by) > tolerance]
    reason = ""
    if off:
        each = "; ".join(
            f"{r.symbol} {_pp(r.reached or Decimal(0))}% vs {_pp(r.intended)}% intended"
            for r in off
        )
        reason = (
            f"account {account} is off its intended allocation by more than "
            f"{_pp(tolerance)} percentage points: {each}"
        )
    return AllocationCheck(account, tuple(rows), reason)


#: How a run's events begin that flag an account (:func:`flag_run`, :func:`note_breaks`);
#: the account follows, as ``account ID``.
ALLOCATION_FLAG = "allocation flagged: "
RECONCILIATION_BREAK = "reconciliation break: "
_FLAGGED = re.compile(
    rf"^({re.escape(ALLOCATION_FLAG)}|{re.escape(RECONCILIATION_BREAK)})account (\S+?):? "
)


def flag_run(uow: UnitOfWork, run: RunId, checks: Iterable[AllocationCheck]) -> int:
    """Record each flagged check on ``run`` as an event with its reason (the run keeps its
    state: the flag is what the events say); returns how many accounts were flagged. The
    caller commits the unit of work."""
    flagged = [c for c in checks if c.flagged]
    for check in flagged:
        uow.runs.note(run, uow.now, f"{ALLOCATION_FLAG}{check.reason}")
    return len(flagged)


def note_breaks(uow: UnitOfWork, run: RunId, compared: Iterable[AccountReconciliation]) -> int:
    """Record each account of ``compared`` that does not reconcile as an event of ``run``
    listing its differences; returns how many. The caller commits."""
    broken = [a for a in compared if not a.reconciled]
    for account in broken:
        uow.runs.note(run, uow.now, f"{RECONCILIATION_BREAK}{break_text(account)}")
    return len(broken)


def break_text(account: AccountReconciliation) -> str:
    """One line: the account and each of its differences (book, broker)."""
    each = "; ".join(
        f"{d.kind.value}{' ' + d.symbol if d.symbol else ''} book {d.book} broker {d.broker}"
        for d in account.differences
    )
    return f"account {account.account}: {each}"


@dataclass(frozen=True, slots=True)
class RunFlag:
    """An account a run flagged: ``kind`` ``allocation`` or ``reconciliation``, and why."""

    run: RunId
    account: AccountId
    kind: str
    reason: str


def run_flags(run: RunId, events: Iterable[RunEvent]) -> list[RunFlag]:
    """The flags recorded among ``run``'s events, in order."""
    out = []
    for event in events:
        found = _FLAGGED.match(event.reason)
        if found:
            kind = "allocation" if found.group(1) == ALLOCATION_FLAG else "reconciliation"
            out.append(RunFlag(run, AccountId(found.group(2)), kind, event.reason))
    return out


def allocation_flags(uow: UnitOfWork) -> list[RunFlag]:
    """The allocation flags still standing: per account, those of the last ended run that
    traded it (a later run that reached its allocation clears an earlier flag)."""
    latest: dict[AccountId, list[RunFlag]] = {}
    for run in uow.runs.list():
        if not run.state.terminal:
            continue
        flags = [f for f in run_flags(run.id, uow.runs.events(run.id)) if f.kind == "allocation"]
        for account in {o.account for o in uow.orders.for_run(run.id)}:
            latest[account] = [f for f in flags if f.account == account]
    return [f for flags in latest.values() for f in flags]


def run_allocation(
    uow: UnitOfWork, run: Run, book: Mapping[AccountId, Holdings]
) -> list[AllocationCheck]:
    """:func:`check_allocation` of each account ``run`` traded: the weights its ``book``
    holdings reach at current prices against those its proposal intended. The intended
    holdings are the holdings before the run (the book less the run's fills) moved by the
    proposed orders, their cash by the proposed amounts at the proposal's prices; both are
    valued at current prices, so a move of prices alone flags nothing. Both are measured after
    the account's pending cash flow, as the proposal sized its trades (docs/rebalancing.md): a
    deposit the proposal invests is in the intended cash (which would otherwise fall below
    zero, every weight above its share), and a deposit still pending after the run is in the
    reached cash, so a run that traded as proposed is not flagged and one that left the
    deposit uninvested is."""
    proposal = uow.proposals.get(run.proposal) if run.proposal else None
    if proposal is None:
        return []
    orders = list(uow.orders.for_run(run.id))
    accounts = sorted({o.account for o in orders} & set(book))
    symbols = {o.symbol for o in proposal.orders} | {s for a in accounts for s in book[a].positions}
    then = uow.prices.quotes(symbols, proposal.as_of)
    now = {s: q.price for s, q in uow.prices.quotes(symbols, uow.now).items()}
    orders_of = defaultdict(list)
    for o in orders:
        orders_of[o.account].append(o)
    proposed_of = defaultdict(list)
    for p in proposal.orders:
        proposed_of[p.account].append(p)
    pending = {a: acct.pending_cash for a, acct in uow.accounts.get_many(accounts).items()}
    checks = []
    for account in accounts:
        held = book[account]
        shares: dict[Symbol, Decimal] = defaultdict(Decimal, held.positions)
        reached_cash = Money(held.cash + pending.get(account, NO_MONEY))
        cash: Decimal = reached_cash
        for o in orders_of[account]:  # undo the run's fills: the holdings before it
            sign = 1 if o.side is Side.BUY else -1
            shares[o.symbol] -= sign * o.filled_quantity
            cash += sign * o.filled_notional
        for p in proposed_of[account]:
            if p.symbol in then:  # then the proposal's orders
                sign = 1 if p.side is Side.BUY else -1
                price = then[p.symbol].price
                quantity = p.quantity if p.quantity is not None else (p.notional or 0) / price
                shares[p.symbol] += sign * quantity
                cash -= sign * quantity * price
        values = {s: q * now[s] for s, q in shares.items() if q and s in now}
        total = cash + sum(values.values(), Decimal(0))
        intended = {s: v / total for s, v in values.items()} if total > 0 else {}
        if total > 0:
            intended[CASH] = cash / total
        checks.append(check_allocation(account, intended, held.positions, now, reached_cash))
    return checks
