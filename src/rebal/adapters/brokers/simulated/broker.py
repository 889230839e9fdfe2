"""The simulated broker: a counterparty with its own ledger, behind the broker port.

It keeps accounts, positions, cash, the orders it received and their fills in its own tables
(:mod:`.tables`, in the same database as rebal's book unless given another), so reconciliation
compares two independent records. It reads the time from a :class:`~rebal.ports.clock.Clock`
(a run's ``--as-of`` is the simulated market's clock), prices from a
:class:`~rebal.ports.prices.PriceSource` and the market's hours from a
:class:`~rebal.ports.calendar.MarketCalendar`; :mod:`.matching` says how orders are checked and
filled, :mod:`.faults` which calls and orders meet an injected fault.

Each call is one transaction that first plays the account's events due by the clock's now, so
every answer is the market as of now; on PostgreSQL the account's row is locked for the
transaction and on SQLite the database, so two processes trading one account take turns and
cash and shares are never spent twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from functools import partial
from typing import TypeVar

import sqlalchemy as sa

from rebal.adapters.brokers.simulated import blocks
from rebal.adapters.brokers.simulated import tables as t
from rebal.adapters.brokers.simulated.faults import Faults, Lost
from rebal.adapters.brokers.simulated.ledger import (
    INSERT_REQUEST,
    OMNIBUS,
    AccountBook,
    OrderRecord,
    SimulatedLedger,
    account_ids,
    buying_power,
    find_orders,
    load_books,
    orders_of,
    read_fills,
    read_orders,
    read_positions,
    request_row,
    save_books,
    share_units,
    taken_references,
)
from rebal.adapters.brokers.simulated.market import Market
from rebal.adapters.brokers.simulated.matching import MatchingEngine, check_expressible
from rebal.adapters.brokers.simulated.schema import connect, migrate
from rebal.adapters.brokers.simulated.settings import SimulatorSettings
from rebal.domain.ids import AccountId, ClientOrderId, Symbol
from rebal.domain.money import Money, Quantity, to_cents
from rebal.domain.order import Fill, Order
from rebal.ports.broker import (
    AccountReport,
    Allocation,
    BlockLeg,
    BrokerError,
    BrokerOrder,
    BrokerUnavailable,
    Deposit,
    DuplicateOrder,
    InvalidOrder,
    Opening,
    UnknownAccount,
    UnknownOrder,
)
from rebal.ports.calendar import MarketCalendar
from rebal.ports.clock import Clock
from rebal.ports.prices import PriceSource

T = TypeVar("T")


class SimulatedBroker:
    """A :class:`rebal.ports.broker.Broker` (and :class:`~rebal.ports.broker.OpensAccounts`,
    :class:`~rebal.ports.broker.TakesDeposits`) over its own ledger in ``database`` (a URL or an
    engine), created or migrated on first use."""

    name = "sim"

    def __init__(
        self,
        database: str | sa.Engine,
        *,
        clock: Clock,
        prices: PriceSource,
        calendar: MarketCalendar,
        settings: SimulatorSettings | None = None,
    ) -> None:
        self.engine = connect(database) if isinstance(database, str) else database
        migrate(self.engine)
        self.settings = settings or SimulatorSettings()
        self.clock = clock
        self.ledger = SimulatedLedger(self.engine)
        self._faults = Faults(self.settings)
        self._matching = MatchingEngine(
            Market(calendar, self.settings), prices, self.settings, self._faults
        )

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    # -- faults around a call -----------------------------------------------------------------

    def _call(self, operation: str, subject: str, work: Callable[[], T], *also: str) -> T:
        """Do ``work``, unless the call meets an injected fault (of ``operation``, or of one of
        the operations it answers for too, ``also``): then it is not done (a disconnect before
        the request reached the broker) or done with its answer lost (a disconnect after, a
        timeout: the clock moves on by the timeout), and the caller gets
        :class:`BrokerUnavailable` either way."""
        now = self.clock.now()
        for asked in (operation, *also):
            lost = self._faults.call(self.engine, asked, subject, now)
            if lost is not None:
                break
        if lost is None:
            return work()
        if lost is not Lost.BEFORE:
            with suppress(BrokerError):  # the answer, even a refusal, is lost like any other
                work()
        if lost is Lost.TIMEOUT:
            seconds = self.settings.faults.timeout.seconds
            self.clock.sleep(seconds)
            raise BrokerUnavailable(f"{asked} {subject}: no answer within {seconds:g} s")
        raise BrokerUnavailable(f"{asked} {subject}: connection lost ({lost})")

    def _catch_up(self, conn: sa.Connection, account: AccountId) -> AccountBook:
        book = AccountBook.load(conn, account)
        self._matching.run_due(conn, book, self.clock.now())
        return book

    def _catch_up_books(
        self, conn: sa.Connection, accounts: Iterable[AccountId]
    ) -> dict[AccountId, AccountBook]:
        books = load_books(conn, accounts)
        now = self.clock.now()
        for book in books.values():
            self._matching.run_due(conn, book, now)
        return books

    def _catch_up_all(self) -> None:
        now = self.clock.now()
        with self.engine.begin() as conn:
            due = conn.execute(
                sa.select(t.orders.c.account).where(t.orders.c.next_event_at <= now).distinct()
            ).scalars()
            save_books(conn, self._catch_up_books(conn, list(due)).values())

    # -- opening accounts ---------------------------------------------------------------------

    def open_account(
        self, account: AccountId, cash: Money, positions: Mapping[Symbol, Quantity]
    ) -> bool:
        """Open one account (see :meth:`open_accounts`); ``False`` when it was already open."""
        return account in self.open_accounts({account: Opening(cash=cash, positions=positions)})

    def open_accounts(self, openings: Mapping[AccountId, Opening]) -> frozenset[AccountId]:
        """Open each account not yet open with its cash and positions, as a transfer-in
        recorded in the ledger, all in one transaction; an account already open is left as it
        is. Returns the accounts opened now."""
        for account, opening in openings.items():
            _check_opening(account, opening)
        now = self.clock.now()
        with self.engine.begin() as conn:
            known = set(account_ids(conn))
            new = sorted(a for a in openings if a not in known)
            if not new:
                return frozenset()
            conn.execute(
                sa.insert(t.accounts),
                [{"account": a, "cash": openings[a].cash, "opened_at": now} for a in new],
            )
            held = [(a, s, q) for a in new for s, q in sorted(openings[a].positions.items())]
            if held:
                conn.execute(
                    sa.insert(t.positions),
                    [{"account": a, "symbol": s, "quantity": q} for a, s, q in held],
                )
            cash_in: list[dict[str, object]] = [
                {"account": a, "at": now, "symbol": None, "quantity": None, "amount": c}
                for a, c in ((a, openings[a].cash) for a in new)
            ]
            shares_in: list[dict[str, object]] = [
                {"account": a, "at": now, "symbol": s, "quantity": q, "amount": None}
                for a, s, q in held
            ]
            conn.execute(sa.insert(t.transfers), cash_in + shares_in)
        return frozenset(new)

    def deposit(self, deposits: Sequence[Deposit]) -> frozenset[str]:
        """Credit each deposit whose reference the ledger has not taken, as a transfer-in of
        cash recorded under its reference, all in one transaction (a
        :class:`~rebal.ports.broker.TakesDeposits` call; like opening accounts, it meets no
        injected fault); returns the references credited now. An account not open raises
        :class:`UnknownAccount` and nothing is credited."""
        wanted = {d.reference: d for d in deposits}
        now = self.clock.now()
        with self.engine.begin() as conn:
            # the accounts' rows locked first, so two callers with one reference take turns
            books = self._catch_up_books(conn, {d.account for d in wanted.values()})
            missing = sorted({d.account for d in wanted.values()} - set(books))
            if missing:
                raise UnknownAccount(f"the simulated broker keeps no account {missing[0]}")
            taken = taken_references(conn, list(wanted))
            new = [d for ref, d in sorted(wanted.items()) if ref not in taken]
            for d in new:
                books[d.account].cash = Money(books[d.account].cash + d.amount)
            save_books(conn, books.values())
            if new:
                conn.execute(
                    sa.insert(t.transfers),
                    [
                        {
                            "account": d.account,
                            "at": now,
                            "symbol": None,
                            "quantity": None,
                            "amount": d.amount,
                            "reference": d.reference,
                        }
                        for d in new
                    ],
                )
        return frozenset(d.reference for d in new)

    # -- block orders (rebal.ports.broker.TradesBlocks) ---------------------------------------

    omnibus = OMNIBUS

    def submit_block(self, order: Order, legs: Sequence[BlockLeg]) -> BrokerOrder:
        """Receive a block order funded by its legs, in one transaction (:mod:`.blocks`); it
        meets the faults of ``submit``."""

        def work() -> BrokerOrder:
            with self.engine.begin() as conn:
                return blocks.receive_block(conn, self._matching, order, legs, self.clock.now())

        return self._call("submit", order.client_order_id, work)

    def allocate(
        self, block: ClientOrderId, allocations: Sequence[Allocation]
    ) -> Sequence[Allocation]:
        """Allocate an ended block's fill to its legs' accounts, once (:mod:`.blocks`)."""
        with self.engine.begin() as conn:
            return blocks.allocate(conn, self._matching, block, allocations, self.clock.now())

    # -- the port -----------------------------------------------------------------------------

    def submit(self, order: Order) -> BrokerOrder:
        """Receive ``order``: accepted (and filled at once when it is due now) or rejected with
        the reason; a known client order id raises :class:`DuplicateOrder`."""
        (answer,) = self.submit_many([order])
        if isinstance(answer, BrokerError):
            raise answer
        return answer

    def submit_many(self, orders: Sequence[Order]) -> list[BrokerOrder | BrokerError]:
        """Receive several orders in one request and one transaction, each as :meth:`submit`
        would: the answer for each, in order, is the order as the broker then has it or the
        error it met (:class:`DuplicateOrder` for a client id already known, also earlier in
        the same request). A fault loses the answer to the whole request."""
        subject = orders[0].client_order_id if orders else ""
        return self._call("submit", subject, lambda: self._submit_many(orders))

    def _submit_many(self, orders: Sequence[Order]) -> list[BrokerOrder | BrokerError]:
        try:
            return self._receive(orders)
        except sa.exc.IntegrityError:
            # Another process took one of these client ids between our look and our insert:
            # look again, and its order is a duplicate like any other.
            return self._receive(orders)

    def _receive(self, orders: Sequence[Order]) -> list[BrokerOrder | BrokerError]:
        answers: dict[int, BrokerOrder | BrokerError] = {}
        by_account: dict[AccountId, list[int]] = {}
        for k, order in enumerate(orders):
            try:
                check_expressible(order)
            except InvalidOrder as exc:
                answers[k] = exc
                continue
            by_account.setdefault(order.account, []).append(k)
        now = self.clock.now()
        requests: list[dict[str, object]] = []
        with self.engine.begin() as conn:
            known = find_orders(conn, [o.client_order_id for o in orders])
            books = self._catch_up_books(conn, by_account)
            fresh: list[tuple[int, OrderRecord]] = []
            for account in sorted(by_account):
                book = books.get(account)
                for k in by_account[account]:
                    order = orders[k]
                    if book is None:
                        answers[k] = UnknownAccount(
                            f"the simulated broker keeps no account {account}"
                        )
                    elif order.client_order_id in known:
                        requests.append(request_row(now, "submit", order, "duplicate"))
                        answers[k] = DuplicateOrder(known[order.client_order_id].reported())
                    else:
                        seq = -1 - len(fresh)  # provisional, in the order received
                        record = self._matching.receive(conn, book, order, now, seq)
                        self._matching.run_due(conn, book, now)
                        known[order.client_order_id] = record
                        fresh.append((k, record))
            save_books(conn, books.values())
            for k, record in fresh:
                requests.append(request_row(now, "submit", record, record.state.value))
                answers[k] = record.reported()
            if requests:
                conn.execute(INSERT_REQUEST, requests)
        return [answers[k] for k in range(len(orders))]

    def cancel(self, client_order_id: ClientOrderId) -> BrokerOrder:
        """Cancel a working order (an ended one comes back as it is)."""
        return self._call("cancel", client_order_id, lambda: self._cancel(client_order_id))

    def _cancel(self, client_order_id: ClientOrderId) -> BrokerOrder:
        now = self.clock.now()
        with self.engine.begin() as conn:
            known = read_orders(conn, client_order_id=client_order_id)
            if not known:
                raise UnknownOrder(f"the simulated broker has no order {client_order_id}")
            book = self._catch_up(conn, known[0].account)
            record = book.working.get(known[0].seq, known[0])
            if record.working:
                self._matching.cancel(book, record, now)
            book.save(conn)
            conn.execute(INSERT_REQUEST, request_row(now, "cancel", record, record.state.value))
            return record.reported()

    def order(self, client_order_id: ClientOrderId) -> BrokerOrder | None:
        """The order with this client id as of now, ``None`` when it never reached the broker."""
        return self._call("order", client_order_id, lambda: self._order(client_order_id))

    def _order(self, client_order_id: ClientOrderId) -> BrokerOrder | None:
        with self.engine.begin() as conn:
            known = read_orders(conn, client_order_id=client_order_id)
            if not known:
                return None
            book = self._catch_up(conn, known[0].account)
            book.save(conn)
            return book.working.get(known[0].seq, known[0]).reported()

    def orders(self, account: AccountId | None = None) -> Sequence[BrokerOrder]:
        """Every order (of ``account``) as of now, oldest first."""
        return self._call("orders", account or "", lambda: self._scan(account, self.ledger.orders))

    def fills(self, account: AccountId | None = None) -> Sequence[Fill]:
        """Every fill (of ``account``) as of now, in the order they are reported."""
        return self._call("fills", account or "", lambda: self._scan(account, self.ledger.fills))

    def fills_of(
        self, accounts: Sequence[AccountId], orders: Sequence[ClientOrderId]
    ) -> Sequence[Fill]:
        """The fills of ``orders`` (of ``accounts``) as of now, in one transaction (the
        :class:`~rebal.ports.broker.ReportsFills` call; it meets the faults of ``fills``)."""
        return self._call("fills", "", lambda: self._fills_of(accounts, orders))

    def _fills_of(
        self, accounts: Sequence[AccountId], orders: Sequence[ClientOrderId]
    ) -> list[Fill]:
        with self.engine.begin() as conn:
            save_books(conn, self._catch_up_books(conn, accounts).values())
            return read_fills(conn, orders=orders)

    def _scan(self, account: AccountId | None, read: Callable[[AccountId | None], T]) -> T:
        if account is None:
            self._catch_up_all()
        else:
            with self.engine.begin() as conn:
                self._catch_up(conn, account).save(conn)
        return read(account)

    def accounts(self) -> Sequence[AccountId]:
        """The accounts the broker keeps, by id."""
        return self._call("accounts", "", self.ledger.accounts)

    def positions(self, account: AccountId) -> Mapping[Symbol, Quantity]:
        """Shares held per symbol as of now."""
        return self._call("positions", account, lambda: self._holdings(account)[2])

    def cash(self, account: AccountId) -> Money:
        """Settled cash as of now."""
        return self._call("cash", account, lambda: self._holdings(account)[0])

    def buying_power(self, account: AccountId) -> Money:
        """Cash less what working buys hold back, as of now."""
        return self._call("buying_power", account, lambda: self._holdings(account)[1])

    def buying_powers(self, accounts: Sequence[AccountId]) -> dict[AccountId, Money]:
        """Each account's buying power as of now, in one transaction (the
        :class:`~rebal.ports.broker.ReportsBuyingPower` call; it meets the faults of
        ``buying_power``)."""
        return self._call("buying_power", "", lambda: self._buying_powers(accounts))

    def _buying_powers(self, accounts: Sequence[AccountId]) -> dict[AccountId, Money]:
        with self.engine.begin() as conn:
            books = self._books_now(conn, accounts)
        return {a: buying_power(books[a].cash, books[a].working.values()) for a in accounts}

    def _books_now(
        self, conn: sa.Connection, accounts: Sequence[AccountId]
    ) -> dict[AccountId, AccountBook]:
        """The books of ``accounts`` caught up to now and saved in ``conn``'s transaction; an
        account the broker does not keep raises :class:`UnknownAccount`."""
        books = self._catch_up_books(conn, accounts)
        for account in accounts:
            if account not in books:
                raise UnknownAccount(f"the simulated broker keeps no account {account}")
        save_books(conn, books.values())
        return books

    def holdings(
        self, accounts: Sequence[AccountId]
    ) -> dict[AccountId, tuple[Money, Mapping[Symbol, Quantity]]]:
        """Each account's settled cash and positions as of now, in one transaction (the
        :class:`~rebal.ports.broker.ReportsHoldings` call; it meets the faults of
        ``positions``)."""
        return self._call("positions", "", lambda: self._many_holdings(accounts))

    def _many_holdings(
        self, accounts: Sequence[AccountId]
    ) -> dict[AccountId, tuple[Money, Mapping[Symbol, Quantity]]]:
        with self.engine.begin() as conn:
            books = self._books_now(conn, accounts)
        return {
            a: (books[a].cash, {s: q for s, q in sorted(books[a].positions.items()) if q != 0})
            for a in accounts
        }

    def account_reports(self, accounts: Sequence[AccountId]) -> dict[AccountId, AccountReport]:
        """Each account's cash, buying power, positions and orders as of now, in one
        transaction (the :class:`~rebal.ports.broker.ReportsAccounts` call; it meets the faults
        of ``cash``, ``buying_power``, ``positions`` and ``orders``)."""
        work = partial(self._account_reports, accounts)
        return self._call("cash", "", work, "buying_power", "positions", "orders")

    def _account_reports(self, accounts: Sequence[AccountId]) -> dict[AccountId, AccountReport]:
        with self.engine.begin() as conn:
            books = self._books_now(conn, accounts)
            sent = orders_of(conn, accounts)
        return {
            a: AccountReport(
                cash=books[a].cash,
                buying_power=buying_power(books[a].cash, books[a].working.values()),
                positions={s: q for s, q in sorted(books[a].positions.items()) if q != 0},
                orders=sent[a],
            )
            for a in accounts
        }

    def _holdings(self, account: AccountId) -> tuple[Money, Money, Mapping[Symbol, Quantity]]:
        with self.engine.begin() as conn:
            book = self._catch_up(conn, account)
            book.save(conn)
            power = buying_power(book.cash, book.working.values())
            return book.cash, power, read_positions(conn, account)


def _check_opening(account: AccountId, opening: Opening) -> None:
    """Raise ``ValueError`` for an opening the ledger cannot hold."""
    to_cents(opening.cash)
    if opening.cash < 0:
        raise ValueError(f"account {account}: opening cash {opening.cash} is negative")
    for symbol, quantity in opening.positions.items():
        share_units(quantity)
        if quantity <= 0:
            raise ValueError(f"account {account}: {symbol} quantity {quantity} is not positive")
