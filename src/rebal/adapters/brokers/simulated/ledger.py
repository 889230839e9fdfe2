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
from rebal.domain.order import Fill, OrderState, OrderType, Side, TimeInForce, check_transition
from rebal.ports.broker import BrokerOrder, UnknownAccount

_WORKING = (OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED)


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

    def reported(self, avg_price: Decimal | None) -> BrokerOrder:
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
            filled_avg_price=avg_price,
            submitted_at=self.submitted_at,
            updated_at=self.updated_at,
            reason=self.reason,
        )

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


def account_ids(conn: sa.Connection) -> list[AccountId]:
    """Every account the ledger keeps, by id."""
    rows = conn.execute(sa.select(t.accounts.c.account).order_by(t.accounts.c.account))
    return [AccountId(r[0]) for r in rows]


def read_cash(conn: sa.Connection, account: AccountId, *, lock: bool = False) -> Money:
    """The account's cash; raises :class:`UnknownAccount`. With ``lock``, the account's row is
    held for the rest of the transaction (PostgreSQL; SQLite holds the whole database)."""
    query = sa.select(t.accounts.c.cash).where(t.accounts.c.account == account)
    cash = conn.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if cash is None:
        raise UnknownAccount(f"the simulated broker keeps no account {account}")
    return Money(cash)


def read_positions(conn: sa.Connection, account: AccountId) -> dict[Symbol, Quantity]:
    """Shares held per symbol (the ledger keeps no zero positions)."""
    rows = conn.execute(
        sa.select(t.positions.c.symbol, t.positions.c.quantity)
        .where(t.positions.c.account == account)
        .order_by(t.positions.c.symbol)
    )
    return {Symbol(s): Quantity(plain(q)) for s, q in rows}


def read_orders(
    conn: sa.Connection,
    *,
    account: AccountId | None = None,
    client_order_id: ClientOrderId | None = None,
    working: bool = False,
) -> list[OrderRecord]:
    """Orders (of an account, with a client id, or only the working ones), oldest first."""
    query = sa.select(t.orders).order_by(t.orders.c.seq)
    if account is not None:
        query = query.where(t.orders.c.account == account)
    if client_order_id is not None:
        query = query.where(t.orders.c.client_order_id == client_order_id)
    if working:
        query = query.where(t.orders.c.state.in_([s.value for s in _WORKING]))
    return [OrderRecord.from_row(r) for r in conn.execute(query)]


def average_prices(conn: sa.Connection, orders: Sequence[OrderRecord]) -> dict[int, Decimal]:
    """The quantity-weighted average fill price of each order that has fills (9 decimals)."""
    seqs = [o.seq for o in orders if o.filled_quantity > 0]
    totals: dict[int, tuple[Decimal, Decimal]] = {}
    for chunk in (seqs[k : k + 500] for k in range(0, len(seqs), 500)):
        rows = conn.execute(
            sa.select(t.fills.c.order_seq, t.fills.c.quantity, t.fills.c.price).where(
                t.fills.c.order_seq.in_(chunk)
            )
        )
        for seq, quantity, price in rows:
            value, count = totals.get(seq, (Decimal(0), Decimal(0)))
            totals[seq] = (value + quantity * price, count + quantity)
    return {
        seq: plain((value / count).quantize(QUANTITY_STEP, rounding=ROUND_HALF_EVEN))
        for seq, (value, count) in totals.items()
    }


def reported_orders(conn: sa.Connection, orders: Sequence[OrderRecord]) -> list[BrokerOrder]:
    """``orders`` as the broker reports them."""
    prices = average_prices(conn, orders)
    return [o.reported(prices.get(o.seq)) for o in orders]


def read_fills(conn: sa.Connection, account: AccountId | None = None) -> list[Fill]:
    """Every fill (of ``account``) in the order the broker reports them: by execution, except
    that a fill with a duplicate report is listed twice and the fills of an order whose reports
    come out of order are listed latest first, where its first fill stood."""
    query = (
        sa.select(t.fills, t.orders.c.client_order_id, t.orders.c.fills_reversed)
        .join(t.orders, t.orders.c.seq == t.fills.c.order_seq)
        .order_by(t.fills.c.seq)
    )
    if account is not None:
        query = query.where(t.fills.c.account == account)
    rows = [r._mapping for r in conn.execute(query)]
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
    for one transaction; changes are kept here until :meth:`save`."""

    account: AccountId
    cash: Money
    positions: dict[Symbol, Quantity]
    working: dict[int, OrderRecord]
    fills: list[dict[str, Any]] = field(default_factory=list)
    touched: set[int] = field(default_factory=set)
    _held: frozenset[Symbol] = frozenset()
    _cash_was: Money = NO_MONEY

    @classmethod
    def load(cls, conn: sa.Connection, account: AccountId) -> AccountBook:
        """The account as it stands, its row locked; raises :class:`UnknownAccount`."""
        cash = read_cash(conn, account, lock=True)
        positions = read_positions(conn, account)
        working = {o.seq: o for o in read_orders(conn, account=account, working=True)}
        return cls(account, cash, positions, working, [], set(), frozenset(positions), cash)

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
        """Write the changed cash, positions and orders (those in ``touched``), and the new
        fills."""
        if self.cash != self._cash_was:
            conn.execute(
                sa.update(t.accounts)
                .where(t.accounts.c.account == self.account)
                .values(cash=self.cash)
            )
        self._save_positions(conn)
        for seq in sorted(self.touched):
            values = self.working[seq].values()
            conn.execute(sa.update(t.orders).where(t.orders.c.seq == seq).values(**values))
        if self.fills:
            conn.execute(sa.insert(t.fills), self.fills)

    def _save_positions(self, conn: sa.Connection) -> None:
        touched = {f["symbol"] for f in self.fills}
        for symbol in sorted(touched):
            quantity = self.positions.get(symbol, NO_SHARES)
            where = (t.positions.c.account == self.account) & (t.positions.c.symbol == symbol)
            if quantity == 0:
                conn.execute(sa.delete(t.positions).where(where))
            elif symbol in self._held:
                conn.execute(sa.update(t.positions).where(where).values(quantity=quantity))
            else:
                conn.execute(
                    sa.insert(t.positions).values(
                        account=self.account, symbol=symbol, quantity=quantity
                    )
                )


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
            return reported_orders(conn, read_orders(conn, account=account))

    def fills(self, account: AccountId | None = None) -> list[Fill]:
        """Every fill (of ``account``), as reported."""
        with self.engine.connect() as conn:
            return read_fills(conn, account)

    def holdings(self, account: AccountId) -> tuple[Money, Money, Mapping[Symbol, Quantity]]:
        """The account's cash, buying power and positions; raises :class:`UnknownAccount`."""
        with self.engine.connect() as conn:
            cash = read_cash(conn, account)
            working = read_orders(conn, account=account, working=True)
            return cash, buying_power(cash, working), read_positions(conn, account)
