"""The simulated exchange's matching engine: what it checks when an order arrives, and how a
working order fills, expires or is canceled as simulated time passes.

An order is checked when it arrives and refused (state ``rejected``, with the reason) when the
broker does not take its form, the calendar has no session for it, the settings reject it, or
the account lacks the cash or the free shares: a buy must fit the buying power (cash less what
working buys hold back) and a sell the shares not held back by working sells, so the account can
neither overdraw nor go short. An accepted order gets its plan: when it may first fill (after
the latency), in how many parts (partial fills), and when it expires (a day order: its session's
close).

Time moves only when the broker is asked something: :meth:`MatchingEngine.run_due` then plays
the account's due events in time order, each at its own instant, not the instant of the
question, so how often the broker is asked does not change what it does (a limit order that is
not marketable is looked at again every ``limit_recheck_seconds``). Each fill is priced from the
quote at its instant (:mod:`.market`) and settles at once: a sale's proceeds are cash the next
buy may use.
"""

from __future__ import annotations

import heapq
import math
from datetime import datetime, timedelta
from decimal import Decimal
from hashlib import blake2b

import sqlalchemy as sa

from rebal.adapters.brokers.simulated.draws import draw, happens, split
from rebal.adapters.brokers.simulated.faults import Faults
from rebal.adapters.brokers.simulated.ledger import (
    AccountBook,
    OrderRecord,
    plain,
    share_units,
    shares,
)
from rebal.adapters.brokers.simulated.market import Market, marketable, notional_quantity
from rebal.adapters.brokers.simulated.settings import SimulatorSettings
from rebal.domain.ids import BrokerOrderId, ClientOrderId, symbol
from rebal.domain.money import NO_SHARES, Money, Quantity, amount_of, from_cents, to_cents
from rebal.domain.order import Order, OrderState, OrderType, Side, TimeInForce
from rebal.ports.broker import InvalidOrder
from rebal.ports.calendar import CalendarUnavailable
from rebal.ports.prices import PriceSource

_SHARE = 10**9  # plan units per whole share


def broker_order_id(client_order_id: ClientOrderId) -> BrokerOrderId:
    """The broker's id of an order: fixed by the client id, so a replay gives the same ids."""
    return BrokerOrderId("sim-" + blake2b(client_order_id.encode(), digest_size=10).hexdigest())


def arrival(
    order: Order,
    now: datetime,
    seq: int,
    state: OrderState = OrderState.ACCEPTED,
    reason: str = "",
) -> OrderRecord:
    """``order`` as the ledger records it when it arrives at ``now``, before any plan, under
    the provisional ``seq`` (negative) until :func:`~.ledger.save_books` stores it."""
    return OrderRecord(
        seq=seq,
        client_order_id=order.client_order_id,
        broker_order_id=broker_order_id(order.client_order_id),
        account=order.account,
        symbol=order.symbol,
        side=order.side,
        type=order.type,
        time_in_force=order.time_in_force,
        extended_hours=order.extended_hours,
        quantity=order.quantity,
        notional=order.notional,
        limit_price=order.limit_price,
        state=state,
        reason=reason,
        submitted_at=now,
        updated_at=now,
    )


def check_expressible(order: Order) -> None:
    """Raise :class:`InvalidOrder` for an order the ledger cannot hold exactly."""
    try:
        for value in (order.quantity, order.limit_price):
            if value is not None:
                share_units(value)
        if order.notional is not None:
            to_cents(order.notional)
    except ValueError as exc:
        raise InvalidOrder(f"order {order.client_order_id}: {exc}") from None


def _form_problem(order: Order) -> str | None:
    """Why the broker does not take an order of this form, if it does not."""
    if order.notional is not None:
        if order.side is Side.SELL:
            return "a sell is given in shares, not as a notional amount"
        if order.type is not OrderType.MARKET or order.time_in_force is not TimeInForce.DAY:
            return "a notional order must be a market order good for the day"
    if order.extended_hours and (
        order.type is not OrderType.LIMIT or order.time_in_force is not TimeInForce.DAY
    ):
        return "an extended-hours order must be a limit order good for the day"
    return None


class MatchingEngine:
    """Receives orders and plays their fills, expiries and cancellations over time."""

    def __init__(
        self, market: Market, prices: PriceSource, settings: SimulatorSettings, faults: Faults
    ) -> None:
        self.market = market
        self.prices = prices
        self.settings = settings
        self.faults = faults
        self._refused = frozenset(symbol(text) for text in settings.rejections.symbols)

    # -- arrival ------------------------------------------------------------------------------

    def receive(
        self, conn: sa.Connection, book: AccountBook, order: Order, now: datetime, seq: int
    ) -> OrderRecord:
        """Check ``order`` and make its record (accepted or rejected) under the provisional
        ``seq`` (negative) until :func:`~.ledger.save_books` stores it; an accepted order joins
        the book's working orders."""
        record = arrival(order, now, seq)
        problem = _form_problem(order) or self._plan(conn, book, record, now)
        if problem is not None:
            record.state = OrderState.REJECTED
            record.reason = problem
            record.plan = ()
            record.next_event_at = record.expires_at = None
        book.received.append(record)
        if record.working:
            book.working[record.seq] = record
        return record

    def _plan(
        self, conn: sa.Connection, book: AccountBook, o: OrderRecord, now: datetime
    ) -> str | None:
        """Fill in the plan of an order that passes the checks; the reason it fails otherwise."""
        s = self.settings
        cid = o.client_order_id
        try:
            window = self.market.window(now, o.extended_hours)
        except CalendarUnavailable as exc:
            return f"the market calendar has no session for this order: {exc}"
        o.expires_at = window.end if o.time_in_force is TimeInForce.DAY else None
        rejected = happens(s.rejections.probability, s.seed, "reject", cid)
        if rejected or o.symbol in self._refused:
            return s.rejections.reason
        # An order whose fills are to be reported out of order fills in two parts at least.
        o.plan = self._parts(o, 2 if self.faults.drawn("out_of_order_fills", cid) else 1)
        if o.side is Side.BUY:
            if o.quantity is not None:
                reserve = o.limit_price or self._quote(o, now)
                if reserve is None:
                    return f"no price for {o.symbol} at {now.isoformat()}"
                o.reserve_price = reserve
            need, free_cash = o.reserved_cash(), book.free_cash()
            if need > free_cash:
                return (
                    f"insufficient buying power: the order needs {need}, "
                    f"the account has {free_cash}"
                )
        else:
            want, free_shares = o.reserved_shares(), book.free_shares(o.symbol)
            if want > free_shares:
                held = book.positions.get(o.symbol, NO_SHARES)
                return (
                    f"no short sales: the order sells {plain(want)} {o.symbol}, the account "
                    f"holds {plain(held)} of which {plain(free_shares)} are not already being sold"
                )
        if len(o.plan) > 1:
            o.fills_reversed = self.faults.inject(conn, "out_of_order_fills", cid, now)
        o.acknowledged = not self.faults.inject(conn, "ack_lost", cid, now)
        latency = s.latency_seconds + s.latency_jitter_seconds * draw(s.seed, "latency", cid)
        o.next_event_at = now + timedelta(seconds=latency)
        return None

    def _parts(self, o: OrderRecord, least: int) -> tuple[int, ...]:
        s = self.settings
        cid = o.client_order_id
        if o.notional is not None:
            total, grain = to_cents(o.notional), 1
        else:
            assert o.quantity is not None
            total = share_units(o.quantity)
            grain = _SHARE if total % _SHARE == 0 else 1  # whole shares fill in whole shares
        parts = 1
        if happens(s.partial_fills.probability, s.seed, "partial", cid):
            extra = math.floor(draw(s.seed, "parts", cid) * (s.partial_fills.max_parts - 1))
            parts = 2 + extra
        return tuple(split(total, max(parts, least), grain, s.seed, "split", cid))

    def _quote(self, o: OrderRecord, at: datetime) -> Decimal | None:
        """The price the order would fill at, at ``at`` (``None`` without a quote)."""
        quote = self.prices.quotes([o.symbol], at).get(o.symbol)
        return None if quote is None else self.market.fill_price(quote.price, o.side)

    # -- over time ----------------------------------------------------------------------------

    def run_due(self, conn: sa.Connection, book: AccountBook, now: datetime) -> None:
        """Play every event of the book's working orders due by ``now``, in time order."""
        due = [
            (o.next_event_at, seq)
            for seq, o in book.working.items()
            if o.working and o.next_event_at is not None and o.next_event_at <= now
        ]
        heapq.heapify(due)
        while due:
            at, seq = heapq.heappop(due)
            o = book.working[seq]
            self._event(conn, book, o, at)
            book.touched.add(seq)
            if o.working and o.next_event_at is not None and o.next_event_at <= now:
                heapq.heappush(due, (o.next_event_at, seq))

    def cancel(self, book: AccountBook, o: OrderRecord, now: datetime) -> None:
        """Cancel a working order at the client's request (what has filled stays filled)."""
        o.move(OrderState.CANCELED, now, "canceled at the client's request")
        book.touched.add(o.seq)

    def _event(self, conn: sa.Connection, book: AccountBook, o: OrderRecord, at: datetime) -> None:
        if o.expires_at is not None and at >= o.expires_at:
            o.move(OrderState.EXPIRED, o.expires_at, "a day order not filled by the close expires")
            return
        try:
            window = self.market.window(at, o.extended_hours)
        except CalendarUnavailable as exc:
            o.move(OrderState.CANCELED, at, f"the market calendar has no session: {exc}")
            return
        if at < window.start:  # the market is closed: wait for it to open (or the expiry)
            o.next_event_at = window.start
            if o.expires_at is not None:
                o.next_event_at = min(window.start, o.expires_at)
            return
        recheck = at + timedelta(seconds=self.settings.limit_recheck_seconds)
        price = self._quote(o, at)
        if price is None or not marketable(price, o.side, o.type, o.limit_price):
            o.next_event_at = recheck
            return
        self._fill(conn, book, o, price, at)

    def _fill(
        self, conn: sa.Connection, book: AccountBook, o: OrderRecord, price: Decimal, at: datetime
    ) -> None:
        part = o.plan[o.parts_done]
        if o.notional is not None:
            quantity = notional_quantity(from_cents(part), price)
            if quantity == 0:
                o.move(OrderState.CANCELED, at, f"{from_cents(part)} buys no share at {price}")
                return
        else:
            quantity = shares(part)
        amount = amount_of(quantity, price)
        if o.side is Side.BUY:
            free = book.free_cash(besides=o.seq)
            if amount > free:
                o.move(
                    OrderState.CANCELED,
                    at,
                    f"not enough cash at the fill: {amount} needed at {price}, {free} free",
                )
                return
            book.cash = Money(book.cash - amount)
            book.positions[o.symbol] = Quantity(book.positions.get(o.symbol, 0) + quantity)
        else:
            book.cash = Money(book.cash + amount)
            book.positions[o.symbol] = Quantity(book.positions[o.symbol] - quantity)
        fill_id = f"{o.broker_order_id}-{o.parts_done + 1}"
        twice = self.faults.inject(conn, "duplicate_fill_report", fill_id, at)
        book.fills.append(
            {
                "fill_id": fill_id,
                "order_seq": o.seq,
                "account": o.account,
                "symbol": o.symbol,
                "side": o.side.value,
                "quantity": quantity,
                "price": price,
                "amount": amount,
                "at": at,
                "reports": 2 if twice else 1,
            }
        )
        o.fill(quantity, price, amount, at)
        if o.working:
            o.next_event_at = at + timedelta(seconds=self.settings.partial_fills.interval_seconds)
