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

from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from typing import TypeVar

import sqlalchemy as sa

from rebal.adapters.brokers.simulated import tables as t
from rebal.adapters.brokers.simulated.faults import Faults, Lost
from rebal.adapters.brokers.simulated.ledger import (
    AccountBook,
    OrderRecord,
    SimulatedLedger,
    buying_power,
    read_orders,
    read_positions,
    reported_orders,
    share_units,
)
from rebal.adapters.brokers.simulated.market import Market
from rebal.adapters.brokers.simulated.matching import MatchingEngine, check_expressible
from rebal.adapters.brokers.simulated.schema import connect, migrate
from rebal.adapters.brokers.simulated.settings import SimulatorSettings
from rebal.domain.ids import AccountId, ClientOrderId, Symbol
from rebal.domain.money import Money, Quantity, to_cents
from rebal.domain.order import Fill, Order
from rebal.ports.broker import (
    BrokerError,
    BrokerOrder,
    BrokerUnavailable,
    DuplicateOrder,
    UnknownOrder,
)
from rebal.ports.calendar import MarketCalendar
from rebal.ports.clock import Clock
from rebal.ports.prices import PriceSource

T = TypeVar("T")


class SimulatedBroker:
    """A :class:`rebal.ports.broker.Broker` (and :class:`~rebal.ports.broker.OpensAccounts`)
    over its own ledger in ``database`` (a URL or an engine), created or migrated on first use."""

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

    def _call(self, operation: str, subject: str, work: Callable[[], T]) -> T:
        """Do ``work``, unless the call meets an injected fault: then it is not done (a
        disconnect before the request reached the broker) or done with its answer lost (a
        disconnect after, a timeout: the clock moves on by the timeout), and the caller gets
        :class:`BrokerUnavailable` either way."""
        lost = self._faults.call(self.engine, operation, subject, self.clock.now())
        if lost is None:
            return work()
        if lost is not Lost.BEFORE:
            with suppress(BrokerError):  # the answer, even a refusal, is lost like any other
                work()
        if lost is Lost.TIMEOUT:
            seconds = self.settings.faults.timeout.seconds
            self.clock.sleep(seconds)
            raise BrokerUnavailable(f"{operation} {subject}: no answer within {seconds:g} s")
        raise BrokerUnavailable(f"{operation} {subject}: connection lost ({lost})")

    def _catch_up(self, conn: sa.Connection, account: AccountId) -> AccountBook:
        book = AccountBook.load(conn, account)
        self._matching.run_due(conn, book, self.clock.now())
        return book

    def _catch_up_all(self) -> None:
        now = self.clock.now()
        with self.engine.connect() as conn:
            due = conn.execute(
                sa.select(t.orders.c.account)
                .where(t.orders.c.next_event_at <= now)
                .distinct()
                .order_by(t.orders.c.account)
            ).scalars()
            accounts = [AccountId(a) for a in due]
        for account in accounts:
            with self.engine.begin() as conn:
                self._catch_up(conn, account).save(conn)

    # -- opening accounts ---------------------------------------------------------------------

    def open_account(
        self, account: AccountId, cash: Money, positions: Mapping[Symbol, Quantity]
    ) -> bool:
        """Open ``account`` with ``cash`` and ``positions`` as a transfer-in, once: ``False``
        (and nothing changed) when it is already open."""
        to_cents(cash)
        if cash < 0:
            raise ValueError(f"account {account}: opening cash {cash} is negative")
        for symbol, quantity in positions.items():
            share_units(quantity)
            if quantity <= 0:
                raise ValueError(f"account {account}: {symbol} quantity {quantity} is not positive")
        now = self.clock.now()
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(t.accounts.c.account).where(t.accounts.c.account == account)
            ).first()
            if exists:
                return False
            conn.execute(sa.insert(t.accounts).values(account=account, cash=cash, opened_at=now))
            conn.execute(
                sa.insert(t.transfers).values(account=account, at=now, symbol=None, amount=cash)
            )
            for symbol in sorted(positions):
                quantity = positions[symbol]
                conn.execute(
                    sa.insert(t.positions).values(account=account, symbol=symbol, quantity=quantity)
                )
                conn.execute(
                    sa.insert(t.transfers).values(
                        account=account, at=now, symbol=symbol, quantity=quantity
                    )
                )
        return True

    # -- the port -----------------------------------------------------------------------------

    def submit(self, order: Order) -> BrokerOrder:
        """Receive ``order``: accepted (and filled at once when it is due now) or rejected with
        the reason; a known client order id raises :class:`DuplicateOrder`."""
        return self._call("submit", order.client_order_id, lambda: self._submit(order))

    def _submit(self, order: Order) -> BrokerOrder:
        check_expressible(order)
        now = self.clock.now()
        try:
            with self.engine.begin() as conn:
                book = self._catch_up(conn, order.account)
                known = read_orders(conn, client_order_id=order.client_order_id)
                if known:
                    record = known[0]
                else:
                    record = self._matching.receive(conn, book, order, now)
                    self._matching.run_due(conn, book, now)
                book.save(conn)
                self._log(conn, "submit", record, "duplicate" if known else record.state.value)
                answer = reported_orders(conn, [record])[0]
        except sa.exc.IntegrityError:
            # Another process took this client id between our look and our insert.
            existing = self._order(order.client_order_id)
            if existing is None:
                raise
            raise DuplicateOrder(existing) from None
        if known:
            raise DuplicateOrder(answer)
        return answer

    def _log(self, conn: sa.Connection, operation: str, record: OrderRecord, outcome: str) -> None:
        conn.execute(
            sa.insert(t.requests).values(
                at=self.clock.now(),
                operation=operation,
                client_order_id=record.client_order_id,
                account=record.account,
                outcome=outcome,
            )
        )

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
            self._log(conn, "cancel", record, record.state.value)
            return reported_orders(conn, [record])[0]

    def order(self, client_order_id: ClientOrderId) -> BrokerOrder | None:
        """The order with this client id as of now, ``None`` when it never reached the broker."""
        return self._call("order", client_order_id, lambda: self._order(client_order_id))

    def _order(self, client_order_id: ClientOrderId) -> BrokerOrder | None:
        with self.engine.begin() as conn:
            known = read_orders(conn, client_order_id=client_order_id)
            if not known:
                return None
            self._catch_up(conn, known[0].account).save(conn)
            return reported_orders(conn, read_orders(conn, client_order_id=client_order_id))[0]

    def orders(self, account: AccountId | None = None) -> Sequence[BrokerOrder]:
        """Every order (of ``account``) as of now, oldest first."""
        return self._call("orders", account or "", lambda: self._scan(account, self.ledger.orders))

    def fills(self, account: AccountId | None = None) -> Sequence[Fill]:
        """Every fill (of ``account``) as of now, in the order they are reported."""
        return self._call("fills", account or "", lambda: self._scan(account, self.ledger.fills))

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

    def _holdings(self, account: AccountId) -> tuple[Money, Money, Mapping[Symbol, Quantity]]:
        with self.engine.begin() as conn:
            book = self._catch_up(conn, account)
            book.save(conn)
            power = buying_power(book.cash, book.working.values())
            return book.cash, power, read_positions(conn, account)
