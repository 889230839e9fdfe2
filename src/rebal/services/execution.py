"""Trading a run through a broker: sells first, buys from the cash they raised, the book from fills.

The order of work, each step its own unit of work so a crash loses at most the step under way:

0. the process claims the run (:meth:`~rebal.ports.storage.Store.claim`), so no other process
   trades it at the same time;
1. the run goes ``queued -> in_progress``; the broker opens the run's accounts from the book
   when it is a custodian that takes transfers (:class:`~rebal.ports.broker.OpensAccounts`),
   and a ``rebalance`` or ``invest_cash`` run's pending deposits are funded there and settled
   in the book (:mod:`rebal.services.deposits`);
2. the sells (stored as intents when the run started) are sent in blocks (:data:`BLOCK`), each
   block's intents marked ``submitted`` and committed *before* the block is sent; an order
   already ``submitted`` after a restart is first looked up at the broker by its client order
   id and sent only when the broker never got it, so no id is ever taken twice; every order
   carries the run's order terms (type, limit, extended hours: rebal.services.order_terms),
   and with a TWAP/VWAP algorithm each order of the leg is a parent whose child slices
   (rebal.services.slicing) are committed as intents, then sent one slice at a time over the
   window (:meth:`_Execution.release`), the parent following its children's fills;
3. the run waits (on the clock, a bounded time) until every sell has ended;
4. the buys are sized from the cash the sells actually raised: the proposal's buys shrink, pro
   rata, by any shortfall of the sells' proceeds against their estimate and never beyond the
   broker's buying power; fractional accounts buy notional amounts, whole-share runs whole
   quantities at the current price; their intents are committed, then sent and awaited as in 2-3;
5. before each leg is sent, pre-trade compliance checks it (before the sells: the sells and
   every intended buy; before the buys: the buys as sized): an account in violation, while
   others of the leg pass, is held back (its unsent orders canceled, its buys never sized; the
   others trade), otherwise a run with any violation sends nothing more and ends ``error``,
   "blocked by compliance: ..." (rebal.services.run_compliance);
6. the run ends ``completed``, or ``completed_adjusted`` listing each order dropped, resized or
   not fully filled and each account held back, and why, or ``timeout`` when orders were still
   working at the end of the wait (they are canceled), or ``error`` when the broker could not be
   reached; a completed run's final unit of work also checks each account it traded
   (:meth:`_Execution.end_check`: the book against the broker, the allocation reached against
   the proposal's within 0.5 percentage points), each break or flag an event of the run and an
   operations alert.

Fills are recorded once (by fill id) in the same unit of work that applies them to the book:
an account's cash moves by each fill's exact amount, a sell takes shares from the lots its lot
instruction names or else the symbol's oldest lots (:class:`rebal.services.book.SellRelief`;
what each lot relieved realised is recorded with it, :mod:`rebal.tax.realised`), a buy adds a
lot at its cost.
"""

from __future__ import annotations

import gc
import json
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import ROUND_FLOOR, Decimal
from functools import partial
from typing import TypeVar

from rebal.domain.account import Holding, Price, positions_of
from rebal.domain.ids import AccountId, ClientOrderId, RunId, Symbol
from rebal.domain.money import (
    CENT,
    NO_MONEY,
    NO_SHARES,
    QUANTITY_STEP,
    Money,
    Quantity,
    amount_of,
)
from rebal.domain.order import Fill, Order, OrderState, Side, check_transition
from rebal.domain.proposal import Proposal, ProposedOrder
from rebal.domain.run import Run, RunState
from rebal.ports.broker import (
    Broker,
    BrokerError,
    BrokerOrder,
    BrokerUnavailable,
    DuplicateOrder,
    Opening,
    OpensAccounts,
    ReportsBuyingPower,
    ReportsFills,
    SubmitsMany,
    TakesDeposits,
)
from rebal.ports.clock import Clock
from rebal.ports.storage import Store, UnitOfWork
from rebal.services.blocks import cancel_blocks, trade_blocks, trades_in_blocks
from rebal.services.book import SellRelief
from rebal.services.compliance import RunCompliance
from rebal.services.deposits import fund_deposits
from rebal.services.order_terms import OrderTerms
from rebal.services.reconcile import (
    ALLOCATION_TOLERANCE,
    AccountReconciliation,
    book_holdings,
    broker_holdings,
    compare,
    flag_run,
    note_breaks,
    run_allocation,
)
from rebal.services.run_compliance import comply, held_accounts, held_lines
from rebal.services.run_notices import check_notices, queue_run_notices
from rebal.services.runs import EXCHANGE_TZ, NOT_TRADED, RunInputError, client_order_id
from rebal.services.slicing import Slice, rolled_up, slice_order
from rebal.tax.realised import RealisedLot, realised_lots

T = TypeVar("T")

#: How many orders go out together: their intents are committed ``submitted`` in one unit of
#: work, sent in one request, and their answers and fills stored in one unit of work, so a run
#: commits per block rather than per order (benchmarks/execution.py).
BLOCK = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionSettings:
    """How long the run waits for its orders (seconds on the run's clock), how often it asks,
    and how many times an unanswered broker call is tried before the run ends in ``error``."""

    max_wait_seconds: float = 3600.0
    poll_seconds: float = 5.0
    attempts: int = 5
    #: the outbox channels a run's end is reported on (rebal.services.run_notices)
    channels: tuple[str, ...] = ("webhook", "email")


class _Unreachable(Exception):
    """The broker did not answer after every attempt."""


@dataclass
class _Execution:
    store: Store
    broker: Broker
    run: RunId
    clock: Clock
    settings: ExecutionSettings
    actor: str
    #: the checks before each leg (``None`` only for cancel_run, which sends nothing)
    compliance: RunCompliance | None = None
    #: the run's proposal once read (a stored proposal never changes)
    _proposal: Proposal | None = field(default=None, init=False, repr=False)

    def uow(self, why: str) -> UnitOfWork:
        return self.store.unit_of_work(actor=self.actor, reason=f"run {self.run}: {why}")

    def proposal(self) -> Proposal:
        """The run's proposal, read once."""
        if self._proposal is None:
            with self.uow("read proposal") as uow:
                run = uow.runs.get(self.run)
                assert run is not None and run.proposal is not None
                self._proposal = uow.proposals.get(run.proposal)
            assert self._proposal is not None
        return self._proposal

    def ask(self, call: Callable[[], T]) -> T:
        """``call``, tried again (after a pause) while the broker does not answer."""
        for _ in range(self.settings.attempts):
            try:
                return call()
            except BrokerUnavailable:
                self.clock.sleep(self.settings.poll_seconds)
        raise _Unreachable(f"the broker did not answer {self.settings.attempts} times")

    # -- orders ---------------------------------------------------------------------------------

    def send(self, orders: Sequence[Order]) -> None:
        """Send each order the broker does not have yet, :data:`BLOCK` at a time. An order
        already ``submitted`` (by a process that ended before it knew the answer) is first asked
        for at the broker by its client order id and sent again only when the broker never got
        it; a ``new`` one was never sent (its intent is committed ``submitted`` before it goes,
        and the run's claim keeps other processes out), so it is not asked for."""
        unsent = []
        for order in orders:
            if order.state is OrderState.SUBMITTED:
                known = self.ask(partial(self.broker.order, order.client_order_id))
                if known is not None:
                    self.sync([known], {order.client_order_id: order})
                    continue
            if order.state in (OrderState.NEW, OrderState.SUBMITTED):
                unsent.append(order)
        for k in range(0, len(unsent), BLOCK):
            self.send_block(unsent[k : k + BLOCK])

    def send_block(self, block: Sequence[Order]) -> None:
        """Commit the block's intents ``submitted``, send them in one request, then store the
        answers and fills in one unit of work: a crash between the two leaves them
        ``submitted``, to be asked for at the broker before anything is sent again."""
        now = self.clock.now()
        marked = [
            o.advance(OrderState.SUBMITTED, submitted_at=now) if o.state is OrderState.NEW else o
            for o in block
        ]
        with self.uow("submit") as uow:
            uow.orders.update([m for m, o in zip(marked, block, strict=True) if m is not o])
            uow.commit()
        try:
            answers = (
                self.broker.submit_many(marked)
                if isinstance(self.broker, SubmitsMany)
                else [_submit(self.broker, o) for o in marked]
            )
        except BrokerUnavailable:
            return  # unknown outcome: the orders stay submitted and are asked for later
        got: list[BrokerOrder] = []
        refused = []
        for order, answer in zip(marked, answers, strict=True):
            if isinstance(answer, DuplicateOrder):
                got.append(answer.existing)
            elif isinstance(answer, BrokerUnavailable):
                continue
            elif isinstance(answer, BrokerError):
                refused.append(order.advance(OrderState.REJECTED, reason=str(answer)))
            else:
                got.append(answer)
        if refused:
            with self.uow("refused") as uow:
                uow.orders.update(refused)
                uow.commit()
        self.sync(got, {o.client_order_id: o for o in marked})

    def sync(self, answers: Iterable[BrokerOrder], known: Mapping[ClientOrderId, Order]) -> None:
        """Store how far each order has got at the broker, and its new fills in the book, in
        one unit of work; ``known`` are the orders as this process last stored them (the run's
        claim keeps anyone else from changing them)."""
        answers = list(answers)
        if not answers:
            return
        fills = self.ask(partial(self.fills, answers))
        with self.uow("broker report") as uow:
            updated = []
            orders = {}
            for answer in answers:
                stored = known.get(answer.client_order_id) or uow.orders.get(answer.client_order_id)
                if stored is None:
                    continue
                orders[stored.client_order_id] = stored
                moved = _moved(stored, answer)
                if moved is not None:
                    updated.append(moved)
            uow.orders.update(updated)
            _roll_up(uow, {o.parent for o in updated if o.parent is not None})
            new = uow.fills.add(fills)
            apply_fills(uow, new, orders)
            uow.commit()

    def release(self, ids: Sequence[ClientOrderId]) -> list[ClientOrderId]:
        """Send the leg's orders ``ids``, or with the run's algorithm their child slices one
        slice at a time over the window; the ids of the orders sent (the ones to wait for).

        The children's intents are committed, with the parents marked ``submitted`` at the
        window's start, before the first is sent; a resume derives the same children from that
        start and sends each through :meth:`send`, which never sends one the broker has."""
        proposal = self.proposal()
        terms = OrderTerms.of_config(proposal.config)
        if terms.algo is None:
            self.send(self.stored(ids))
            return list(ids)
        whole = bool(json.loads(proposal.config or "{}").get("whole_shares", False))
        window = timedelta(minutes=terms.algo_window_minutes)
        with self.uow("slice orders") as uow:
            slices: list[Slice] = []
            for cid in ids:
                parent = uow.orders.get(cid, for_update=True)
                assert parent is not None
                if parent.state is OrderState.NEW:
                    parent = parent.advance(OrderState.SUBMITTED, submitted_at=self.clock.now())
                    uow.orders.update([parent])
                assert parent.submitted_at is not None
                slices += slice_order(
                    parent,
                    terms.algo,
                    parent.submitted_at,
                    window,
                    terms.algo_slices,
                    whole_shares=whole,
                )
            uow.orders.add(
                [s.order for s in slices if uow.orders.get(s.order.client_order_id) is None]
            )
            uow.commit()
        for at in sorted({s.at for s in slices}):
            pause = (at - self.clock.now()).total_seconds()
            if pause > 0:
                self.clock.sleep(pause)
            self.send(self.stored([s.order.client_order_id for s in slices if s.at == at]))
        return [s.order.client_order_id for s in slices]

    def fills(self, answers: Sequence[BrokerOrder]) -> list[Fill]:
        """The broker's fills of the orders answered, in one request when it can."""
        ids = {a.client_order_id for a in answers}
        accounts = sorted({a.account for a in answers})
        if isinstance(self.broker, ReportsFills):
            return [
                f for f in self.broker.fills_of(accounts, sorted(ids)) if f.client_order_id in ids
            ]
        return [f for a in accounts for f in self.broker.fills(a) if f.client_order_id in ids]

    def wait(self, orders: Sequence[ClientOrderId]) -> list[Order]:
        """Poll the orders until each has ended or the wait is over; the orders as stored."""
        waited = 0.0
        while True:
            current = self.stored(orders)
            working = [o for o in current if not o.state.terminal]
            if not working:
                return current
            unsent = [
                o for o in working if o.state is OrderState.SUBMITTED and o.broker_order_id is None
            ]
            self.send(unsent)
            if waited >= self.settings.max_wait_seconds:
                return current
            self.clock.sleep(self.settings.poll_seconds)
            waited += self.settings.poll_seconds
            found = [self.ask(partial(self.broker.order, o.client_order_id)) for o in working]
            self.sync((a for a in found if a is not None), {})

    def stored(self, orders: Sequence[ClientOrderId]) -> list[Order]:
        """The run's orders among ``orders``, as stored, in their order."""
        with self.uow("read orders") as uow:
            mine = {o.client_order_id: o for o in uow.orders.for_run(self.run)}
        return [mine[cid] for cid in orders if cid in mine]

    # -- the run --------------------------------------------------------------------------------

    def state(self) -> Run:
        with self.uow("read") as uow:
            run = uow.runs.get(self.run)
        if run is None:
            raise RunInputError(f"unknown run {self.run!r}")
        return run

    def end(
        self,
        state: RunState,
        reason: str,
        check: Callable[[UnitOfWork], None] | None = None,
    ) -> Run:
        """Move the run to ``state`` (once), after ``check`` and with its notifications, in
        one unit of work."""
        with self.uow(str(state)) as uow:
            current = uow.runs.get(self.run, for_update=True)
            assert current is not None
            if current.state.terminal:
                return current
            if check is not None:
                check(uow)
            done = uow.runs.transition(self.run, state, self.clock.now(), reason)
            queue_run_notices(uow, done, self.settings.channels)
            uow.commit()
            return done

    def begin(self) -> Run:
        with self.uow("start") as uow:
            run = uow.runs.get(self.run, for_update=True)
            if run is None:
                raise RunInputError(f"unknown run {self.run!r}")
            if run.state is RunState.QUEUED:
                run = uow.runs.transition(
                    self.run, RunState.IN_PROGRESS, self.clock.now(), "started"
                )
            elif run.state is RunState.IN_PROGRESS:
                uow.runs.note(self.run, self.clock.now(), _resumed(uow.orders.for_run(self.run)))
            if run.proposal is not None:
                self._proposal = uow.proposals.get(run.proposal)
            accounts = _proposal_accounts(self._proposal)
            stored = uow.accounts.get_many(accounts)
            held = uow.holdings.of_many(list(stored))
            openings = {
                a: Opening(cash=acct.cash, positions=positions_of(held[a]))
                for a, acct in stored.items()
            }
            uow.commit()
        if not run.state.terminal and isinstance(self.broker, OpensAccounts):
            self.ask(lambda: self.broker.open_accounts(openings))  # type: ignore[attr-defined]
        if not run.state.terminal and isinstance(self.broker, TakesDeposits):
            fund_deposits(
                self.store, self.broker, run, list(openings), ask=self.ask, clock=self.clock,
                actor=self.actor,
            )  # fmt: skip
        return run

    def size_buys(self) -> None:
        """Store the run's buy intents, sized from what the sells raised (once)."""
        proposal = self.proposal()
        with self.uow("read holds") as uow:
            held = held_accounts(uow.runs.events(self.run))
        buys = [o for o in proposal.orders if o.side is Side.BUY and o.account not in held]
        buyers = sorted({o.account for o in buys})
        powers = (
            dict(self.ask(partial(self.broker.buying_powers, buyers)))
            if isinstance(self.broker, ReportsBuyingPower)
            else {a: self.ask(partial(self.broker.buying_power, a)) for a in buyers}
        )
        with self.uow("size buys") as uow:
            run = uow.runs.get(self.run, for_update=True)
            assert run is not None and run.proposal is not None
            orders = list(uow.orders.for_run(self.run))
            if any(o.side is Side.BUY for o in orders):
                return
            whole = bool(json.loads(proposal.config or "{}").get("whole_shares", False))
            terms = OrderTerms.of_config(proposal.config)
            symbols = {o.symbol for o in proposal.orders}
            then = uow.prices.quotes(symbols, proposal.as_of)
            now = uow.prices.quotes(symbols, self.clock.now())
            intents: list[Order] = []
            sells_of = _by_account(o for o in orders if o.side is Side.SELL)
            proposed_sells = _by_account(o for o in proposal.orders if o.side is Side.SELL)
            sold = uow.fills.for_orders([o.client_order_id for o in orders if o.side is Side.SELL])
            for account, wanted in _by_account(buys).items():
                sells = sells_of.get(account, [])
                estimate = sum(
                    (
                        amount_of(o.quantity or NO_SHARES, then[o.symbol].price)
                        for o in proposed_sells.get(account, [])
                    ),
                    NO_MONEY,
                )
                raised = sum(
                    (
                        amount_of(f.quantity, f.price)
                        for o in sells
                        for f in sold[o.client_order_id]
                    ),
                    NO_MONEY,
                )
                intents += _buy_orders(
                    self.run,
                    wanted,
                    then,
                    now,
                    Money(estimate - raised),
                    powers[account],
                    whole,
                    terms,
                )
            uow.orders.add(intents)
            uow.commit()

    def execute(self) -> Run:
        run = self.begin()
        if run.state.terminal:
            return run
        try:
            for side in (Side.SELL, Side.BUY):
                if side is Side.BUY:
                    self.size_buys()
                if self.state().state.terminal:
                    return self.state()
                blocked = self.comply(side)
                if blocked is not None:
                    return blocked
                ids = [
                    o.client_order_id
                    for o in self.stored_run()
                    if o.side is side and o.parent is None
                ]
                if trades_in_blocks(self.config()):
                    ending = trade_blocks(self, ids)
                    if ending is not None:
                        return self.end(*ending)
                    continue
                final = self.wait(self.release(ids))
                if any(not o.state.terminal for o in final):
                    late = [o for o in final if not o.state.terminal]
                    for o in late:
                        answer = self.ask(partial(self.broker.cancel, o.client_order_id))
                        self.sync([answer], {})
                    names = ", ".join(o.client_order_id for o in late)
                    return self.end(
                        RunState.TIMEOUT,
                        f"still working after "
                        f"{self.settings.max_wait_seconds:g} s, canceled: {names}",
                    )
        except _Unreachable as exc:
            return self.end(RunState.ERROR, str(exc))
        return self.finish()

    def comply(self, side: Side) -> Run | None:
        """Pre-trade compliance of the leg about to be sent (rebal.services.run_compliance):
        the run, ended ``error``, when blocked; ``None`` when the leg may go (less the
        accounts held back)."""
        assert self.compliance is not None, "execute_run always checks compliance"
        return comply(
            self.store,
            self.broker,
            self.run,
            side,
            self.compliance,
            clock=self.clock,
            actor=self.actor,
            channels=self.settings.channels,
        )

    def config(self) -> str:
        """The run's proposal settings (its canonical JSON config)."""
        with self.uow("read settings") as uow:
            run = uow.runs.get(self.run)
            proposal = uow.proposals.get(run.proposal) if run and run.proposal else None
        return proposal.config if proposal else "{}"

    def stored_run(self) -> list[Order]:
        with self.uow("read orders") as uow:
            return list(uow.orders.for_run(self.run))

    def finish(self) -> Run:
        with self.uow("read orders and holds") as uow:
            orders = list(uow.orders.for_run(self.run))
            events = list(uow.runs.events(self.run))
            held = held_accounts(events)
        # a held account's canceled orders are said once, by its line (the events name each)
        adjusted = [
            f"{o.client_order_id} {o.state}: {o.reason}"
            for o in orders
            if (o.state is not OrderState.FILLED or o.reason.startswith("resized"))
            and not (o.account in held and o.state is OrderState.CANCELED)
        ] + held_lines(events)
        check = self.end_check(orders, held)
        if adjusted:
            return self.end(RunState.COMPLETED_ADJUSTED, "; ".join(adjusted), check)
        return self.end(RunState.COMPLETED, f"{len(orders)} orders filled", check)

    def end_check(
        self, orders: Sequence[Order], held_back: Collection[AccountId] = ()
    ) -> Callable[[UnitOfWork], None]:
        """The check a finished run ends with, in its final unit of work: the book of each
        account it traded against the broker's (asked now, before that unit of work begins)
        and the allocation reached against the one intended; each break and each flag is an
        event of the run and an alert in the outbox, and one event sums it up. An account
        compliance ``held_back`` is reconciled only when it traded before it was held, and its
        allocation is not checked (the run did not take it to the intended one)."""
        accounts = sorted(
            {o.account for o in orders if o.account not in held_back or o.filled_quantity > 0}
        )
        held = self.ask(partial(broker_holdings, self.broker, accounts)) if accounts else {}

        def check(uow: UnitOfWork) -> None:
            run = uow.runs.get(self.run)
            assert run is not None
            book = {a: h for a, h in book_holdings(uow).items() if a in held}
            compared = [
                AccountReconciliation(a, book.get(a), held[a], compare(a, book[a], held[a]))
                for a in accounts
                if a in book
            ]
            checks = run_allocation(uow, run, {a: h for a, h in book.items() if a not in held_back})
            broken = note_breaks(uow, run.id, compared)
            flagged = flag_run(uow, run.id, checks)
            uow.outbox.add_all(
                check_notices(run.id, self.clock.now(), checks, compared), self.settings.channels
            )
            uow.runs.note(
                run.id,
                self.clock.now(),
                f"checked {len(compared)} account(s): {broken} reconciliation break(s) with "
                f"the broker, {flagged} allocation(s) more than "
                f"{ALLOCATION_TOLERANCE * 100:.2f} percentage points off the intended one",
            )

        return check


def _roll_up(uow: UnitOfWork, parents: Iterable[ClientOrderId]) -> None:
    """Bring each of ``parents`` to where its children have got (rebal.services.slicing)."""
    for cid in sorted(parents):
        parent = uow.orders.get(cid, for_update=True)
        assert parent is not None and parent.run is not None
        children = [o for o in uow.orders.for_run(parent.run) if o.parent == cid]
        rolled = rolled_up(parent, children)
        if rolled != parent:
            uow.orders.update([rolled])


def _submit(broker: Broker, order: Order) -> BrokerOrder | BrokerError:
    """``order`` sent alone: the broker's answer, or the error it met (a lost answer raises)."""
    try:
        return broker.submit(order)
    except BrokerUnavailable:
        raise
    except BrokerError as exc:
        return exc


def _resumed(orders: Sequence[Order]) -> str:
    """The event of a run taken up again after its process ended mid-run: where its orders
    stood, and that those possibly sent are asked for at the broker before anything is sent."""
    unsent = sum(o.state is OrderState.NEW for o in orders)
    ended = sum(o.state.terminal for o in orders)
    asked = len(orders) - unsent - ended
    return (
        f"resumed after an interruption: {asked} order(s) possibly sent before it, asked for at "
        f"the broker before anything is sent again; {unsent} intent(s) not sent yet; "
        f"{ended} ended"
    )


def _proposal_accounts(proposal: Proposal | None) -> list[AccountId]:
    """The accounts the run opens at the broker: its proposal's, less those it leaves out
    (:func:`rebal.services.runs.overdrawn`)."""
    if proposal is None:
        return []
    return [a.account for a in proposal.accounts if a.status != NOT_TRADED]


def _by_account(orders: Iterable[T]) -> dict[AccountId, list[T]]:
    grouped: dict[AccountId, list[T]] = defaultdict(list)
    for order in orders:
        grouped[order.account].append(order)  # type: ignore[attr-defined]
    return grouped


def _buy_orders(
    run: RunId,
    wanted: Sequence[ProposedOrder],
    then: Mapping[Symbol, Price],
    now: Mapping[Symbol, Price],
    shortfall: Money,
    power: Money,
    whole: bool,
    terms: OrderTerms,
) -> list[Order]:
    """The buys of one account: each proposed buy's estimated amount, scaled down pro rata
    when the sells raised less than estimated or the buying power is short (to the cent,
    rounded down, so the sum never exceeds the budget), with the run's order ``terms``; in
    shares (rounded down: whole ones when ``whole``) at the current price or, for a limit
    order, its limit, when ``whole`` or at a limit (the broker takes notional buys only at
    market)."""
    estimates = [amount_of(o.quantity or NO_SHARES, then[o.symbol].price) for o in wanted]
    total = sum(estimates, NO_MONEY)
    budget = min(total - max(shortfall, NO_MONEY), power)
    scale = Decimal(1) if budget >= total or not total else max(budget, NO_MONEY) / total
    limit = (
        f"the account's buying power at the broker is {power}"
        if power < total - max(shortfall, NO_MONEY)
        else f"the sells raised {shortfall} less cash than estimated"
    )
    out = []
    for o, estimate in zip(wanted, estimates, strict=True):
        amount = Money((estimate * scale).quantize(CENT, rounding=ROUND_FLOOR))
        why = "proposed" if scale == 1 else f"resized from {estimate} to {amount}: {limit}"
        cid = client_order_id(run, o.account, o.symbol, Side.BUY)
        fields = terms.fields(Side.BUY, now[o.symbol].price)
        if whole or fields["limit_price"] is not None:
            per = fields["limit_price"] or now[o.symbol].price
            step = Decimal(1) if whole else QUANTITY_STEP
            shares = (amount / per).quantize(step, rounding=ROUND_FLOOR)
            if shares > 0:
                out.append(
                    Order(
                        client_order_id=cid,
                        account=o.account,
                        symbol=o.symbol,
                        side=Side.BUY,
                        run=run,
                        quantity=Quantity(shares),
                        reason=why,
                        **fields,
                    )
                )
        elif amount > 0:
            out.append(
                Order(
                    client_order_id=cid,
                    account=o.account,
                    symbol=o.symbol,
                    side=Side.BUY,
                    run=run,
                    notional=amount,
                    reason=why,
                    **fields,
                )
            )
    return out


def _moved(stored: Order, answer: BrokerOrder) -> Order | None:
    """``stored`` brought to the broker's ``answer`` along legal moves; ``None`` when nothing
    changed."""
    order = stored
    if order.state is OrderState.NEW and answer.state is not OrderState.NEW:
        order = order.advance(OrderState.SUBMITTED, submitted_at=answer.submitted_at)
    changes = {
        "filled_quantity": answer.filled_quantity,
        "filled_notional": answer.filled_notional,
        "broker_order_id": answer.broker_order_id,
    }
    if answer.reason and answer.state in (
        OrderState.REJECTED,
        OrderState.CANCELED,
        OrderState.EXPIRED,
    ):
        changes["reason"] = answer.reason
    if answer.state is not order.state:
        try:
            check_transition(order.client_order_id, order.state, answer.state)
        except ValueError:
            return None if order is stored else order
        order = replace(order, state=answer.state, **changes)  # type: ignore[arg-type]
    else:
        order = replace(order, **changes)  # type: ignore[arg-type]
    return None if order == stored else order


def apply_fills(
    uow: UnitOfWork, fills: Sequence[Fill], orders: Mapping[ClientOrderId, Order] | None = None
) -> None:
    """Move the book by ``fills`` (new ones only): cash by each amount, a sell's lots as its
    order instructs or oldest first (:class:`rebal.services.book.SellRelief`; ``orders``: the
    fills' orders when the caller has them), and record what each sell realised on the lots it
    relieved."""
    by_account = _by_account(sorted(fills, key=lambda f: (f.at, f.id)))
    relief = SellRelief.of(uow, fills, orders or {})
    accounts = uow.accounts.get_many(list(by_account))
    held = uow.holdings.of_many(list(by_account))
    saved = []
    moved: dict[AccountId, Sequence[Holding]] = {}
    realised: list[RealisedLot] = []
    for account, mine in by_account.items():
        stored = accounts[account]
        lots = list(held[account])
        cash = stored.cash
        for fill in mine:
            amount = amount_of(fill.quantity, fill.price)
            if fill.side is Side.BUY:
                cash = Money(cash - amount)
                lots.append(
                    Holding(
                        account=account,
                        symbol=fill.symbol,
                        quantity=fill.quantity,
                        cost_basis=amount,
                        acquired=fill.at.astimezone(EXCHANGE_TZ).date(),
                    )
                )
            else:
                cash = Money(cash + amount)
                lots, relieved = relief.relieve(lots, fill)
                sold = fill.at.astimezone(EXCHANGE_TZ).date()
                realised += realised_lots(fill.id, sold=sold, proceeds=amount, relieved=relieved)
        saved.append(replace(stored, cash=cash))
        moved[account] = lots
    uow.accounts.save(saved)
    uow.holdings.replace(moved)
    uow.realised.add(realised)
    relief.record(uow)


def execute_run(
    store: Store,
    broker: Broker,
    run: RunId,
    *,
    clock: Clock,
    actor: str,
    settings: ExecutionSettings | None = None,
    compliance: RunCompliance,
) -> Run:
    """Trade ``run`` (a queued run, or resume one in progress) to its end; returns it. Every
    leg passes pre-trade ``compliance`` before it is sent (there is no way to skip it: a run
    blocked ends ``error``, see rebal.services.run_compliance).

    The run is claimed for the whole trade (:meth:`~rebal.ports.storage.Store.claim`): a second
    process starting or resuming it at the same time waits, then finds it ended (or, when the
    first process died, resumes it), so its orders are sent by one process only."""
    with store.claim(f"run {run}"), _settled_heap():
        settings = settings or ExecutionSettings()
        ex = _Execution(store, broker, run, clock, settings, actor, compliance)
        return ex.execute()


@contextmanager
def _settled_heap() -> Iterator[None]:
    """Keep what the process holds when a run starts (its modules, the store's and the
    broker's set-up: hundreds of thousands of objects) out of the cyclic collector's full
    collections while the run lasts. A batch run makes millions of short-lived rows and
    records, and each full collection would scan the settled objects again: about a sixth of
    a 2,000-account run's time (benchmarks/execution.py). Nothing is kept alive by this: the
    objects go back to the collector when the run ends."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def cancel_run(store: Store, broker: Broker, run: RunId, *, clock: Clock, actor: str) -> Run:
    """Cancel a run: a queued one outright, one in progress after canceling its working orders
    at the broker (``canceled_mid_run``)."""
    from rebal.services.runs import cancel_queued

    done = cancel_queued(store, run, actor=actor)
    if done is not None:
        return done
    ex = _Execution(store, broker, run, clock, ExecutionSettings(), actor)
    current = ex.state()
    if current.state.terminal:
        raise RunInputError(f"run {run} has already ended ({current.state})")
    if trades_in_blocks(ex.config()):
        cancel_blocks(ex)
    working = [o for o in ex.stored_run() if not o.state.terminal]
    for order in working:
        if order.state is OrderState.NEW:
            with ex.uow("cancel intent") as uow:
                uow.orders.update([order.advance(OrderState.CANCELED, reason="run canceled")])
                uow.commit()
            continue
        try:
            ex.sync([broker.cancel(order.client_order_id)], {})
        except BrokerError:
            continue
    return ex.end(
        RunState.CANCELED_MID_RUN, f"canceled by {actor}; {len(working)} working orders canceled"
    )
