"""Reading and writing the simulated broker's ledger (the ``sim_*`` tables of :mod:`.tables`).

:class:`OrderRecord` is an order as the ledger holds it, with its fill plan;
:class:`AccountBook` is one account's cash, positions and working orders, loaded for one
transaction and written back by :meth:`AccountBook.save`; the ``read_*`` functions answer the
port's questions from the tables as they stand. :class:`SimulatedLedger` is the broker's own view
for people and reconciliation: it reads, and never moves the market on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from rebal.adapters.brokers.simulated import tables as t
from rebal.adapters.brokers.simulated.schema import connect, database_url, revision
from rebal.domain.ids import AccountId, BrokerOrderId, ClientOrderId, FillId, Symbol
from rebal.domain.money import (
    NO_MONEY,
    NO_SHARES,
    QUANTITY_PLACES,
    QUANTITY_STEP,
    Money,
    Quantity,
    amount_of,
    from_cents,
)
from rebal.domain.order import (
    Fill,
    Order,
    OrderState,
    OrderType,
    Side,
    TimeInForce,
    check_transition,
)
from rebal.ports.broker import BrokerOrder, UnknownAccount

_WORKING = (OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED)
#: The broker's own account block orders are placed in (rebal.adapters.brokers.simulated.blocks).
OMNIBUS = AccountId("sim-omnibus")


def shares(units: int) -> Quantity:
    """A quantity from its count of 10^-9 shares (the unit of a quantity order's plan)."""
    return Quantity(Decimal(units).scaleb(-QUANTITY_PLACES))


def share_units(quantity: Decimal) -> int:
    """A quantity as a count of 10^-9 shares; it must have at most 9 decimal places."""
    scaled = quantity.scaleb(QUANTITY_PLACES)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"quantity {quantity} has more than {QUANTITY_PLACES} decimal places")
    return int(scaled)


def plain(value: Decimal) -> Decimal:
    """``value`` without trailing zeros (``5.000000000`` read from a 9-place column is ``5``
    shares), and without an exponent (``100``, not ``1E+2``); money keeps its cents."""
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    return normal.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else normal


@dataclass(slots=True, kw_only=True)
class OrderRecord:
    """An order as the ledger holds it: what was asked, how far it got, and its fill plan
    (``plan``: the parts it fills in, in 10^-9 shares or in cents of a notional)."""

    seq: int = 0  # set by the database
    client_order_id: ClientOrderId
    broker_order_id: BrokerOrderId
    account: AccountId
    symbol: Symbol
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    extended_hours: bool
    quantity: Quantity | None
    notional: Money | None
    limit_price: Decimal | None
    state: OrderState
    reason: str
    filled_quantity: Quantity = NO_SHARES
    filled_notional: Money = NO_MONEY
    filled_value: Decimal = Decimal(0)
    plan: tuple[int, ...] = ()
    parts_done: int = 0
    reserve_price: Decimal | None = None
    acknowledged: bool = True
    fills_reversed: bool = False
    submitted_at: datetime
    updated_at: datetime
    next_event_at: datetime | None = None
    expires_at: datetime | None = None

    @property
    def working(self) -> bool:
        """Whether the order may still fill."""
        return self.state in _WORKING

    def remaining_parts(self) -> tuple[int, ...]:
        """The parts not yet filled."""
        return self.plan[self.parts_done :] if self.working else ()

    def reserved_cash(self) -> Money:
        """The cash a working buy holds back: its unfilled notional, or its unfilled parts
        valued at its reservation price."""
        if self.side is not Side.BUY:
            return NO_MONEY
        parts = self.remaining_parts()
        if self.notional is not None:
            return from_cents(sum(parts))
        price = self.reserve_price or Decimal(0)
        return Money(sum((amount_of(shares(p), price) for p in parts), NO_MONEY))

    def reserved_shares(self) -> Quantity:
        """The shares a working sell holds back: its unfilled quantity."""
        if self.side is not Side.SELL:
            return NO_SHARES
        return shares(sum(self.remaining_parts()))

    def move(self, state: OrderState, at: datetime, reason: str | None = None) -> None:
        """Go to ``state`` at ``at`` (only along the order transition table)."""
        check_transition(self.client_order_id, self.state, state)
        self.state = state
        self.updated_at = at
        if reason is not None:
            self.reason = reason
        if not self.working:
            self.next_event_at = None

    def fill(self, quantity: Quantity, price: Decimal, amount: Money, at: datetime) -> None:
        """Record a fill of the next part (its state moves with it)."""
        self.filled_quantity = Quantity(self.filled_quantity + quantity)
        self.filled_notional = Money(self.filled_notional + amount)
        self.filled_value += quantity * price
        self.parts_done += 1
        done = self.parts_done == len(self.plan)
        self.move(OrderState.FILLED if done else OrderState.PARTIALLY_FILLED, at)

    def average_price(self) -> Decimal | None:
        """The quantity-weighted average price of the fills, to 9 places."""
        if not self.filled_quantity:
            return None
        average = self.filled_value / self.filled_quantity
        return plain(average.quantize(QUANTITY_STEP, rounding=ROUND_HALF_EVEN))

    def reported(self) -> BrokerOrder:
        """The order as the broker reports it; with its acknowledgement lost, an accepted order
        is reported ``submitted`` until something fills."""
        state = self.state
        if not self.acknowledged and state is OrderState.ACCEPTED:
            state = OrderState.SUBMITTED
        return BrokerOrder(
            client_order_id=self.client_order_id,
            broker_order_id=self.broker_order_id,
            account=self.account,
            symbol=self.symbol,
            side=self.side,
            quantity=None if self.quantity is None else Quantity(plain(self.quantity)),
            notional=self.notional,
            type=self.type,
            limit_price=None if self.limit_price is None else plain(self.limit_price),
            state=state,
            filled_quantity=Quantity(plain(self.filled_quantity)),
            filled_notional=self.filled_notional,
            filled_avg_price=self.average_price(),
            submitted_at=self.submitted_at,
            updated_at=self.updated_at,
            reason=self.reason,
        )

    def progress(self) -> dict[str, Any]:
        """What changes as the order works: the row's columns of :data:`PROGRESS`."""
        return {
            "b_seq": self.seq,
            "state": self.state.value,
            "reason": self.reason,
            "filled_quantity": self.filled_quantity,
            "filled_notional": self.filled_notional,
            "filled_value": self.filled_value,
            "parts_done": self.parts_done,
            "updated_at": self.updated_at,
            "next_event_at": self.next_event_at,
        }

    def values(self) -> dict[str, Any]:
        """The record as a row of ``sim_orders`` (without its ``seq``)."""
        return {
            "client_order_id": self.client_order_id,
            "broker_order_id": self.broker_order_id,
            "account": self.account,
            "symbol": self.symbol,
            "side": self.side.value,
            "type": self.type.value,
            "time_in_force": self.time_in_force.value,
            "extended_hours": self.extended_hours,
            "quantity": self.quantity,
            "notional": self.notional,
            "limit_price": self.limit_price,
            "state": self.state.value,
            "reason": self.reason,
            "filled_quantity": self.filled_quantity,
            "filled_notional": self.filled_notional,
            "filled_value": self.filled_value,
            "plan": ",".join(str(p) for p in self.plan),
            "parts_done": self.parts_done,
            "reserve_price": self.reserve_price,
            "acknowledged": self.acknowledged,
            "fills_reversed": self.fills_reversed,
            "submitted_at": self.submitted_at,
            "updated_at": self.updated_at,
            "next_event_at": self.next_event_at,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> OrderRecord:
        """The record of a ``sim_orders`` row."""
        m = row._mapping
        return cls(
            seq=m["seq"],
            client_order_id=ClientOrderId(m["client_order_id"]),
            broker_order_id=BrokerOrderId(m["broker_order_id"]),
            account=AccountId(m["account"]),
            symbol=Symbol(m["symbol"]),
            side=Side(m["side"]),
            type=OrderType(m["type"]),
            time_in_force=TimeInForce(m["time_in_force"]),
            extended_hours=bool(m["extended_hours"]),
            quantity=m["quantity"],
            notional=m["notional"],
            limit_price=m["limit_price"],
            state=OrderState(m["state"]),
            reason=m["reason"],
            filled_quantity=m["filled_quantity"],
            filled_notional=m["filled_notional"],
            filled_value=m["filled_value"],
            plan=tuple(int(p) for p in m["plan"].split(",") if p),
            parts_done=m["parts_done"],
            reserve_price=m["reserve_price"],
            acknowledged=bool(m["acknowledged"]),
            fills_reversed=bool(m["fills_reversed"]),
            submitted_at=m["submitted_at"],
            updated_at=m["updated_at"],
            next_event_at=m["next_event_at"],
            expires_at=m["expires_at"],
        )


# -- reading ----------------------------------------------------------------------------------
#
# The statements a broker call runs are built once, with bound parameters, so a call spends its
# time in the database rather than in building SQL.

_ACCOUNT: sa.BindParameter[str] = sa.bindparam("account")
_CASH = sa.select(t.accounts.c.cash).where(t.accounts.c.account == _ACCOUNT)
_POSITIONS = (
    sa.select(t.positions.c.symbol, t.positions.c.quantity)
    .where(t.positions.c.account == _ACCOUNT)
    .order_by(t.positions.c.symbol)
)
_ORDERS = sa.select(t.orders).order_by(t.orders.c.seq)
_ORDERS_OF = _ORDERS.where(t.orders.c.account == _ACCOUNT)
_WORKING_OF = _ORDERS_OF.where(t.orders.c.state.in_([s.value for s in _WORKING]))
_BY_CLIENT_ID = _ORDERS.where(t.orders.c.client_order_id == sa.bindparam("client_order_id"))
PROGRESS = (
    "state",
    "reason",
    "filled_quantity",
    "filled_notional",
    "filled_value",
    "parts_done",
    "updated_at",
    "next_event_at",
)
_SAVE_PROGRESS = (
    sa.update(t.orders)
    .where(t.orders.c.seq == sa.bindparam("b_seq"))
    .values({name: sa.bindparam(name) for name in PROGRESS})
)
_SAVE_CASH = (
    sa.update(t.accounts)
    .where(t.accounts.c.account == sa.bindparam("b_account"))
    .values(cash=sa.bindparam("cash"))
)
_POSITION = (t.positions.c.account == sa.bindparam("b_account")) & (
    t.positions.c.symbol == sa.bindparam("b_symbol")
)
_UPDATE_POSITION = sa.update(t.positions).where(_POSITION).values(quantity=sa.bindparam("quantity"))
_DELETE_POSITION = sa.delete(t.positions).where(_POSITION)
_INSERT_ORDERS = sa.insert(t.orders).returning(t.orders.c.seq, sort_by_parameter_order=True)
INSERT_REQUEST = sa.insert(t.requests)
_INSERT_FILLS = sa.insert(t.fills)
_INSERT_POSITION = sa.insert(t.positions)


_CHUNK = 500  # ids per IN (...) list


def _chunks(ids: Sequence[str]) -> Iterable[list[str]]:
    return (list(ids[k : k + _CHUNK]) for k in range(0, len(ids), _CHUNK))


def find_orders(
    conn: sa.Connection, client_order_ids: Sequence[ClientOrderId]
) -> dict[ClientOrderId, OrderRecord]:
    """The orders the ledger has among ``client_order_ids``, by client id."""
    found: dict[ClientOrderId, OrderRecord] = {}
    for chunk in _chunks(sorted(set(client_order_ids))):
        rows = conn.execute(_ORDERS.where(t.orders.c.client_order_id.in_(chunk)))
        found.update((o.client_order_id, o) for o in map(OrderRecord.from_row, rows))
    return found


def taken_references(conn: sa.Connection, references: Sequence[str]) -> set[str]:
    """The transfer references among ``references`` the ledger already has."""
    r = t.transfers.c.reference
    return {
        ref
        for chunk in _chunks(sorted(set(references)))
        for ref in conn.execute(sa.select(r).where(r.in_(chunk))).scalars()
    }


def request_row(
    at: datetime, operation: str, order: Order | OrderRecord, outcome: str
) -> dict[str, Any]:
    """A row of ``sim_requests``: a submit or cancel of ``order`` reached the broker."""
    return {
        "at": at,
        "operation": operation,
        "client_order_id": order.client_order_id,
        "account": order.account,
        "outcome": outcome,
    }


def account_ids(conn: sa.Connection) -> list[AccountId]:
    """Every client account the ledger keeps, by id (not the omnibus account block orders are
    placed in: rebal.adapters.brokers.simulated.blocks)."""
    a = t.accounts.c
    rows = conn.execute(sa.select(a.account).where(a.account != OMNIBUS).order_by(a.account))
    return [AccountId(r[0]) for r in rows]


def read_cash(conn: sa.Connection, account: AccountId) -> Money:
    """The account's cash; raises :class:`UnknownAccount`."""
    cash = conn.execute(_CASH, {"account": account}).scalar_one_or_none()
    if cash is None:
        raise UnknownAccount(f"the simulated broker keeps no account {account}")
    return Money(cash)


def read_positions(conn: sa.Connection, account: AccountId) -> dict[Symbol, Quantity]:
    """Shares held per symbol (the ledger keeps no zero positions)."""
    rows = conn.execute(_POSITIONS, {"account": account})
    return {Symbol(s): Quantity(plain(q)) for s, q in rows}


def read_orders(
    conn: sa.Connection,
    *,
    account: AccountId | None = None,
    client_order_id: ClientOrderId | None = None,
    working: bool = False,
) -> list[OrderRecord]:
    """Orders (of an account, with a client id, or only the working ones of an account),
    oldest first."""
    if client_order_id is not None:
        rows = conn.execute(_BY_CLIENT_ID, {"client_order_id": client_order_id})
    elif account is not None:
        rows = conn.execute(_WORKING_OF if working else _ORDERS_OF, {"account": account})
    else:
        rows = conn.execute(_ORDERS)
    return [OrderRecord.from_row(r) for r in rows]


def orders_of(
    conn: sa.Connection, accounts: Sequence[AccountId]
) -> dict[AccountId, list[BrokerOrder]]:
    """Every order of each of ``accounts``, oldest first, as reported (an account without any
    has an empty list)."""
    found: dict[AccountId, list[BrokerOrder]] = {a: [] for a in accounts}
    for chunk in _chunks(sorted(found)):
        for row in conn.execute(_ORDERS.where(t.orders.c.account.in_(chunk))):
            record = OrderRecord.from_row(row)
            found[record.account].append(record.reported())
    return found


def read_fills(
    conn: sa.Connection,
    account: AccountId | None = None,
    orders: Sequence[ClientOrderId] | None = None,
) -> list[Fill]:
    """Every fill (of ``account``, of ``orders``) in the order the broker reports them: by
    execution, except that a fill with a duplicate report is listed twice and the fills of an
    order whose reports come out of order are listed latest first, where its first fill
    stood."""
    query = (
        sa.select(t.fills, t.orders.c.client_order_id, t.orders.c.fills_reversed)
        .join(t.orders, t.orders.c.seq == t.fills.c.order_seq)
        .order_by(t.fills.c.seq)
    )
    if account is not None:
        query = query.where(t.fills.c.account == account)
    if orders is None:
        rows = [r._mapping for r in conn.execute(query)]
    else:
        ids = list(orders)
        rows = sorted(
            (
                r._mapping
                for k in range(0, len(ids), 500)
                for r in conn.execute(query.where(t.orders.c.client_order_id.in_(ids[k : k + 500])))
            ),
            key=lambda m: m["seq"],
        )
    by_order: dict[int, list[Any]] = {}
    for r in rows:
        by_order.setdefault(r["order_seq"], []).append(r)
    listed: list[Fill] = []
    for r in rows:
        group = by_order[r["order_seq"]]
        if r["fills_reversed"]:
            if r is not group[0]:
                continue
            group = group[::-1]
        else:
            group = [r]
        for g in group:
            listed.extend([_fill(g)] * g["reports"])
    return listed


def _fill(m: Any) -> Fill:
    return Fill(
        id=FillId(m["fill_id"]),
        client_order_id=ClientOrderId(m["client_order_id"]),
        account=AccountId(m["account"]),
        symbol=Symbol(m["symbol"]),
        side=Side(m["side"]),
        quantity=Quantity(plain(m["quantity"])),
        price=plain(m["price"]),
        at=m["at"],
    )


def buying_power(cash: Money, working: Iterable[OrderRecord]) -> Money:
    """``cash`` less what the working buys among ``working`` hold back."""
    return Money(cash - sum((o.reserved_cash() for o in working), NO_MONEY))


# -- one account in one transaction -----------------------------------------------------------


@dataclass(slots=True)
class AccountBook:
    """One account's cash, positions and working orders, loaded (and, on PostgreSQL, locked)
    for one transaction; changes are kept here until :func:`save_books`. An order received in
    the transaction (``received``) goes by a provisional, negative ``seq`` until then."""

    account: AccountId
    cash: Money
    positions: dict[Symbol, Quantity] = field(default_factory=dict)
    working: dict[int, OrderRecord] = field(default_factory=dict)
    fills: list[dict[str, Any]] = field(default_factory=list)
    touched: set[int] = field(default_factory=set)
    received: list[OrderRecord] = field(default_factory=list)
    _held: frozenset[Symbol] = frozenset()
    _cash_was: Money = NO_MONEY

    @classmethod
    def load(cls, conn: sa.Connection, account: AccountId) -> AccountBook:
        """The account as it stands, its row locked; raises :class:`UnknownAccount`."""
        books = load_books(conn, [account])
        if account not in books:
            raise UnknownAccount(f"the simulated broker keeps no account {account}")
        return books[account]

    def free_cash(self, besides: int | None = None) -> Money:
        """Cash not held back by working buys (other than order ``besides``)."""
        return buying_power(self.cash, (o for s, o in self.working.items() if s != besides))

    def free_shares(self, symbol: Symbol) -> Quantity:
        """Shares of ``symbol`` not held back by working sells."""
        held = sum(
            (o.reserved_shares() for o in self.working.values() if o.symbol == symbol),
            NO_SHARES,
        )
        return Quantity(self.positions.get(symbol, NO_SHARES) - held)

    def save(self, conn: sa.Connection) -> None:
        """Write what changed (see :func:`save_books`)."""
        save_books(conn, [self])


def load_books(conn: sa.Connection, accounts: Iterable[AccountId]) -> dict[AccountId, AccountBook]:
    """The books of ``accounts`` (those the ledger keeps), their rows locked in the order of
    their ids, read with a few queries for the lot."""
    ids = sorted(set(accounts))
    books: dict[AccountId, AccountBook] = {}
    a, p, o = t.accounts.c, t.positions.c, t.orders.c
    for chunk in _chunks(ids):
        locked = conn.execute(
            sa.select(a.account, a.cash)
            .where(a.account.in_(chunk))
            .order_by(a.account)
            .with_for_update()
        )
        books.update((AccountId(r[0]), AccountBook(AccountId(r[0]), Money(r[1]))) for r in locked)
    for chunk in _chunks(ids):
        held = conn.execute(sa.select(p.account, p.symbol, p.quantity).where(p.account.in_(chunk)))
        for account, symbol, quantity in held:
            books[account].positions[Symbol(symbol)] = Quantity(plain(quantity))
    for chunk in _chunks(ids):
        working = _ORDERS.where(o.account.in_(chunk), o.state.in_([s.value for s in _WORKING]))
        for record in map(OrderRecord.from_row, conn.execute(working)):
            books[record.account].working[record.seq] = record
    for book in books.values():
        book._held = frozenset(book.positions)
        book._cash_was = book.cash
    return books


def _store_received(conn: sa.Connection, books: Sequence[AccountBook]) -> None:
    """Insert the orders ``books`` received, as they stand now, in one statement, and give each
    (and its fills) its ``seq``: the database's, in the order received."""
    received = sorted((r for b in books for r in b.received), key=lambda r: -r.seq)
    if not received:
        return
    rows = conn.execute(_INSERT_ORDERS, [r.values() for r in received])
    renumbered = {r.seq: int(seq) for r, (seq,) in zip(received, rows, strict=True)}
    for book in books:
        book.working = {renumbered.get(k, k): o for k, o in book.working.items()}
        book.touched = {k for k in book.touched if k not in renumbered}  # inserted as they are
        for fill in book.fills:
            fill["order_seq"] = renumbered.get(fill["order_seq"], fill["order_seq"])
        for record in book.received:
            record.seq = renumbered[record.seq]
        book.received = []


def save_books(conn: sa.Connection, books: Iterable[AccountBook]) -> None:
    """Write the orders received, the changed cash, positions and orders (those in
    ``touched``) and the new fills of ``books``, each kind with one statement for the lot."""
    books = list(books)
    _store_received(conn, books)
    cash: list[dict[str, Any]] = []
    gone: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    added: list[dict[str, Any]] = []
    progress: list[dict[str, Any]] = []
    fills: list[dict[str, Any]] = []
    for book in books:
        if book.cash != book._cash_was:
            cash.append({"b_account": book.account, "cash": book.cash})
        for symbol in sorted({f["symbol"] for f in book.fills}):
            quantity = book.positions.get(symbol, NO_SHARES)
            where = {"b_account": book.account, "b_symbol": symbol}
            if quantity == 0:
                gone.append(where)
            elif symbol in book._held:
                changed.append({**where, "quantity": quantity})
            else:
                added.append({"account": book.account, "symbol": symbol, "quantity": quantity})
        progress.extend(book.working[seq].progress() for seq in sorted(book.touched))
        fills.extend(book.fills)
    for statement, rows in (
        (_SAVE_CASH, cash),
        (_DELETE_POSITION, gone),
        (_UPDATE_POSITION, changed),
        (_INSERT_POSITION, added),
        (_SAVE_PROGRESS, progress),
        (_INSERT_FILLS, fills),
    ):
        if rows:
            conn.execute(statement, rows)


class LedgerMissing(LookupError):
    """The database holds no simulated broker ledger."""


class SimulatedLedger:
    """The simulated broker's ledger as it stands, read-only: what ``rebal broker`` shows and
    reconciliation compares against (it does not move the market on; the broker does)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @classmethod
    def existing(cls, url: str) -> SimulatedLedger:
        """The ledger in the database at ``url``; raises :class:`LedgerMissing` when there is
        none (a read never creates tables)."""
        where = sa.engine.make_url(database_url(url))
        file = where.database if where.get_backend_name() == "sqlite" else None
        if file not in (None, "", ":memory:") and not Path(str(file)).is_file():
            raise LedgerMissing(f"there is no database file {file}")
        engine = connect(url)
        with engine.connect() as conn:
            if revision(conn) is None:
                engine.dispose()
                raise LedgerMissing(f"the database {url} holds no simulated broker ledger")
        return cls(engine)

    def accounts(self) -> list[AccountId]:
        """Every account, by id."""
        with self.engine.connect() as conn:
            return account_ids(conn)

    def orders(self, account: AccountId | None = None) -> list[BrokerOrder]:
        """Every order (of ``account``), oldest first."""
        with self.engine.connect() as conn:
            if account is not None:
                read_cash(conn, account)
            return [o.reported() for o in read_orders(conn, account=account)]

    def fills(self, account: AccountId | None = None) -> list[Fill]:
        """Every fill (of ``account``), as reported."""
        with self.engine.connect() as conn:
            return read_fills(conn, account)

    def last_activity(self) -> datetime | None:
        """The latest instant the ledger records (an order's last change, a request, an
        opening), ``None`` when it is empty: a process that resumes a simulated market starts
        its clock no earlier, so the market's time never runs backwards."""
        latest = [
            sa.select(sa.func.max(t.orders.c.updated_at)),
            sa.select(sa.func.max(t.requests.c.at)),
            sa.select(sa.func.max(t.transfers.c.at)),
        ]
        with self.engine.connect() as conn:
            found = [conn.execute(q).scalar_one_or_none() for q in latest]
        return max((f for f in found if f is not None), default=None)

    def holdings(self, account: AccountId) -> tuple[Money, Money, Mapping[Symbol, Quantity]]:
        """The account's cash, buying power and positions; raises :class:`UnknownAccount`."""
        with self.engine.connect() as conn:
            cash = read_cash(conn, account)
            working = read_orders(conn, account=account, working=True)
            return cash, buying_power(cash, working), read_positions(conn, account)
