"""Starting, listing and canceling rebalance runs: the run use cases over the store.

A run is started for one account, a model's accounts or the whole book, as of an instant, of
one type (:class:`~rebal.domain.run.RunType`). Its key (scope, as-of date in New York, type,
model version) is unique: starting the same run again returns the stored one and proposes
nothing. A new run is proposed by a :class:`Planner` on the stored book (restricted to the run's
accounts) and stored in one unit of work with its proposal and its sell orders as intents
(state ``new``, with the run's order terms, :mod:`rebal.services.order_terms`: a limit sell's
price from the quote as of the run; and the planner's lot instruction of a sell, when it has
one), before anything is sent; :mod:`rebal.services.execution`
trades it.

Bad input (an unknown account or model, a model with no accounts, an empty book, a price
older than the staleness limit) raises :class:`RunInputError` before anything is written. A
held or targeted symbol with no price at all (a delisted security) does not refuse the run: the
planner gives each account holding it the status ``unable_to_check`` with the reason and no
orders, and the other accounts trade.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

from rebal.domain.account import Account
from rebal.domain.book import BookSnapshot
from rebal.domain.ids import CASH, AccountId, ClientOrderId, ProposalId, RunId, Symbol
from rebal.domain.money import Money
from rebal.domain.order import LotInstruction, Order, OrderState, Side
from rebal.domain.proposal import AccountProposal, Proposal, ProposedOrder
from rebal.domain.run import Run, RunEvent, RunKey, RunState, RunType, ScopeKind
from rebal.ports.storage import Store, UnitOfWork
from rebal.services.order_terms import OrderTerms

#: The exchange's time zone: a run's as-of date is its date in New York.
EXCHANGE_TZ = ZoneInfo("America/New_York")
#: A price older than this at the run's as-of instant is stale unless told otherwise.
DEFAULT_MAX_PRICE_AGE = timedelta(days=1)


class RunInputError(ValueError):
    """A run cannot be started or found as asked; the message says why, in one line."""


class PlanLike(Protocol):
    """What a planner returns (see :class:`rebal.proposing.RunPlan`)."""

    @property
    def accounts(self) -> tuple[AccountProposal, ...]: ...
    @property
    def orders(self) -> tuple[tuple[ProposedOrder, Money], ...]: ...
    @property
    def lots(self) -> Mapping[tuple[AccountId, Symbol], LotInstruction]: ...


class Planner(Protocol):
    """Proposes the orders of a book for a run type, with deposits/withdrawals per account."""

    def __call__(
        self, book: BookSnapshot, run_type: RunType, flows: Mapping[AccountId, Money]
    ) -> PlanLike: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRequest:
    """What to run: the scope (``name`` is the account id, the model name, or ``""`` for the
    book), the type, the as-of instant, the options the planner runs with (as canonical JSON,
    kept with the proposal), the amount of a ``raise_cash`` run, the staleness limit, and the
    symbols to price besides those held or targeted (``also_priced``: a harvest run's
    substitutes), each left out of the book when the store has no fresh price of it."""

    scope: ScopeKind
    name: str
    type: RunType
    as_of: datetime
    config: str = "{}"
    amount: Money | None = None
    max_price_age: timedelta = DEFAULT_MAX_PRICE_AGE
    also_priced: frozenset[Symbol] = frozenset()
    #: Whether the broker keeps an account whose cash is negative (a debit balance). The
    #: simulated custodian, the only broker a run trades through, keeps none: an overdrawn
    #: account is left out of the run with the reason (:func:`overdrawn`).
    overdrafts: bool = False


#: The status of an account a run leaves out (see :func:`overdrawn`).
NOT_TRADED = "not_traded"


def overdrawn(accounts: Sequence[Account], request: RunRequest) -> dict[AccountId, str]:
    """The accounts of ``accounts`` the run leaves out, each with the reason: those whose cash
    is negative, when the broker keeps no overdrafts (the account could not be opened there;
    its cash is to be brought back by a deposit or a sale outside the run)."""
    if request.overdrafts:
        return {}
    return {
        a.id: (
            f"not traded: the account's cash is negative ({a.cash}) and the broker keeps no "
            "overdrafts; bring the cash to zero or more, then run it again"
        )
        for a in accounts
        if a.cash < 0
    }


def run_id(key: RunKey) -> RunId:
    """The run's id, derived from its key: the same run always has the same id."""
    return RunId("R" + hashlib.sha256(key.text().encode()).hexdigest()[:12])


def client_order_id(run: RunId, account: AccountId, symbol: Symbol, side: Side) -> ClientOrderId:
    """The order's id at the broker, derived from its run and position: a retry of the same
    order always carries the same id, so the broker can never take it twice."""
    return ClientOrderId(f"{run}-{account}-{symbol}-{side.value[0]}")


def _accounts(uow: UnitOfWork, request: RunRequest) -> tuple[list[Account], int]:
    """The open accounts of the run's scope and the model version of its key."""
    if request.scope is ScopeKind.ACCOUNT:
        account = uow.accounts.get(AccountId(request.name))
        if account is None or account.closed_at is not None:
            raise RunInputError(f"unknown account {request.name!r}")
        version = uow.models.latest(account.model) if account.model else None
        return [account], version.version if version else 0
    if request.scope is ScopeKind.MODEL:
        latest = uow.models.latest(request.name)  # type: ignore[arg-type]
        if latest is None:
            raise RunInputError(f"unknown model {request.name!r}")
        accounts = list(uow.accounts.list(latest.model))
        if not accounts:
            raise RunInputError(f"model {request.name!r} has no accounts")
        return accounts, latest.version
    accounts = list(uow.accounts.list())
    if not accounts:
        raise RunInputError("the book has no accounts: import one with rebal db import")
    return accounts, 0


def _snapshot(uow: UnitOfWork, accounts: Sequence[Account], request: RunRequest) -> BookSnapshot:
    """The stored book restricted to ``accounts``, priced as of the run; refuses a stale price
    of anything held or targeted and leaves a symbol with no price unpriced (see the module)."""
    ids = {a.id for a in accounts}
    held = uow.holdings.of_many([a.id for a in accounts])
    holdings = tuple(h for a in accounts for h in held[a.id])
    models = {
        v.model: v.targets
        for v in uow.models.current()
        if any(a.model == v.model for a in accounts)
    }
    wanted = {h.symbol for h in holdings} | {
        t.symbol for targets in models.values() for t in targets if t.symbol != CASH
    }
    quotes = uow.prices.quotes(wanted, request.as_of)
    for symbol in sorted(wanted):
        quote = quotes.get(symbol)
        if quote is None:
            continue  # the planner gives its accounts unable_to_check, with the reason
        if request.as_of - quote.at > request.max_price_age:
            raise RunInputError(
                f"the price of {symbol} is stale: quoted {quote.at.isoformat()}, more than "
                f"{request.max_price_age} before the run's as-of {request.as_of.isoformat()}"
            )
    extra = uow.prices.quotes(request.also_priced - wanted, request.as_of)
    fresh = {s: q for s, q in extra.items() if request.as_of - q.at <= request.max_price_age}
    priced = {**quotes, **fresh}
    return BookSnapshot(
        models=models,
        accounts=tuple(a for a in accounts if a.id in ids),
        holdings=holdings,
        prices=tuple(priced[s] for s in sorted(set(priced))),
    )


def _flows(request: RunRequest, accounts: Sequence[Account]) -> dict[AccountId, Money]:
    if request.type is not RunType.RAISE_CASH:
        return {}
    if request.amount is None or request.amount <= 0:
        raise RunInputError("a raise_cash run needs a positive --amount")
    if request.scope is not ScopeKind.ACCOUNT:
        raise RunInputError("a raise_cash run is for one account (--account)")
    return {accounts[0].id: Money(-request.amount)}


def _queued(orders: Sequence[object], left_out: Mapping[AccountId, str]) -> str:
    """The event a new run starts with: its proposed orders and the accounts it leaves out."""
    text = f"queued: {len(orders)} proposed orders"
    if left_out:
        text += f"; {len(left_out)} account(s) left out: " + "; ".join(
            f"{a} {why}" for a, why in sorted(left_out.items())
        )
    return text


def start_run(
    store: Store, request: RunRequest, planner: Planner, *, actor: str
) -> tuple[Run, bool]:
    """Store the run of ``request`` with its proposal and sell intents, or find it:
    ``(the run, whether it is new)``. Raises :class:`RunInputError` for bad input."""
    if request.as_of.tzinfo is None:
        raise RunInputError("the run's as-of time must have a time zone")
    with store.unit_of_work(actor=actor, reason=f"start a {request.type} run") as uow:
        accounts, version = _accounts(uow, request)
        key = RunKey(
            scope=request.scope,
            name=request.name,
            as_of=request.as_of.astimezone(EXCHANGE_TZ).date(),
            type=request.type,
            model_version=version,
        )
        # two processes starting this run at once take turns here: the second finds the first's
        # run rather than proposing and storing it again
        uow.lock(f"start run {key.text()}")
        existing = uow.runs.find(key)
        if existing is not None:
            return existing, False
        left_out = overdrawn(accounts, request)
        traded = [a for a in accounts if a.id not in left_out]
        flows = _flows(request, accounts)
        try:
            terms = OrderTerms.of_config(request.config)
        except ValueError as exc:
            raise RunInputError(str(exc)) from None
        outcomes: tuple[AccountProposal, ...] = ()
        orders: tuple[tuple[ProposedOrder, Money], ...] = ()
        lots: Mapping[tuple[AccountId, Symbol], LotInstruction] = {}
        quotes: dict[Symbol, Decimal] = {}
        if traded:
            book = _snapshot(uow, traded, request)
            try:
                plan = planner(book, request.type, flows)
            except ValueError as exc:
                raise RunInputError(str(exc)) from None
            outcomes, orders, lots = plan.accounts, plan.orders, plan.lots
            quotes = {p.symbol: p.price for p in book.prices}
        by_id = {o.account: o for o in outcomes}
        outcomes = tuple(
            by_id.get(a.id)
            or AccountProposal(account=a.id, status=NOT_TRADED, reason=left_out[a.id])
            for a in accounts
            if a.id in by_id or a.id in left_out
        )
        rid = run_id(key)
        proposal = Proposal(
            id=ProposalId(f"P{rid[1:]}"),
            as_of=request.as_of,
            created_at=uow.now,
            config=request.config,
            accounts=outcomes,
            orders=tuple(order for order, _ in orders),
        )
        uow.proposals.add(proposal)
        run = Run(
            id=rid,
            key=key,
            state=RunState.QUEUED,
            created_at=uow.now,
            updated_at=uow.now,
            reason="queued",
            proposal=proposal.id,
        )
        run, new = uow.runs.start(run, _queued(orders, left_out))
        uow.orders.add(
            [
                Order(
                    client_order_id=client_order_id(rid, o.account, o.symbol, o.side),
                    account=o.account,
                    symbol=o.symbol,
                    side=o.side,
                    quantity=o.quantity,
                    run=rid,
                    reason="proposed",
                    lots=lots.get((o.account, o.symbol)),
                    **terms.fields(o.side, quotes[o.symbol]),
                )
                for o, _ in orders
                if o.side is Side.SELL
            ]
        )
        uow.commit()
        return run, new


@dataclass(frozen=True, slots=True)
class RunView:
    """A run with its orders and events, as ``rebal runs show`` prints it; ``outcomes`` are
    its proposal's accounts, each with its status and the reason of its orders (or of none)."""

    run: Run
    orders: tuple[Order, ...]
    events: tuple[RunEvent, ...]
    accounts: tuple[AccountId, ...]
    outcomes: tuple[AccountProposal, ...] = ()


def show_run(store: Store, run: RunId, *, actor: str) -> RunView:
    """The run with its orders and events; :class:`RunInputError` for an unknown id."""
    with store.unit_of_work(actor=actor, reason=f"show run {run}") as uow:
        found = uow.runs.get(run)
        if found is None:
            raise RunInputError(f"unknown run {run!r}")
        proposal = uow.proposals.get(found.proposal) if found.proposal else None
        outcomes = proposal.accounts if proposal else ()
        return RunView(
            found,
            tuple(uow.orders.for_run(run)),
            tuple(uow.runs.events(run)),
            tuple(a.account for a in outcomes),
            tuple(outcomes),
        )


def list_runs(store: Store, state: RunState | None, *, actor: str) -> list[RunView]:
    """Every run (in ``state``), oldest first, with its orders and events."""
    with store.unit_of_work(actor=actor, reason="list runs") as uow:
        runs = list(uow.runs.list(state))
    return [show_run(store, r.id, actor=actor) for r in runs]


def cancel_queued(store: Store, run: RunId, *, actor: str) -> Run | None:
    """Cancel a queued run (nothing was sent): the run, or ``None`` when it is not queued (an
    in-progress run is canceled by :func:`rebal.services.execution.cancel_run`)."""
    with store.unit_of_work(actor=actor, reason=f"cancel run {run}") as uow:
        found = uow.runs.get(run, for_update=True)
        if found is None:
            raise RunInputError(f"unknown run {run!r}")
        if found.state is not RunState.QUEUED:
            return None
        uow.orders.update(
            [
                o.advance(OrderState.CANCELED, reason="run canceled")
                for o in uow.orders.for_run(run)
                if o.state is OrderState.NEW
            ]
        )
        done = uow.runs.transition(run, RunState.CANCELED, uow.now, f"canceled by {actor}")
        uow.commit()
        return done


def canonical(options: Mapping[str, object]) -> str:
    """Options as canonical JSON text (sorted keys), the form a proposal keeps."""
    return json.dumps(dict(options), sort_keys=True, default=str)
