"""Block orders at the simulated broker: an order of the omnibus account funded by its legs'
accounts, and the allocation of its fill back to them.

When a block arrives (:func:`receive_block`), in one transaction: each leg's account must have
what the leg asks free (the shares not held back by working sells, or the buying power), else
the block is recorded ``rejected`` naming the account and nothing moves; the legs' shares (a
sell) or money (a buy) move to the omnibus account (``OMNIBUS``, ``sim-omnibus``: the broker's
own, not listed by ``accounts()``, so reconciliation compares client accounts), recorded in
``sim_block_legs``, and the block is received there like any order (a refusal by the market
moves them back). The block then works and fills in the omnibus account.

Once the block has ended, :func:`allocate` moves its fill to the legs' accounts as rebal's
allocation says (rebal.domain.allocation): a sell's allocated money and its unsold shares, a
buy's allocated shares and its unspent money; the omnibus account is left as it was before the
block, to the share and the cent. An allocation is made once: a repeat returns the first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from rebal.adapters.brokers.simulated import tables as t
from rebal.adapters.brokers.simulated.ledger import (
    INSERT_REQUEST,
    OMNIBUS,
    AccountBook,
    find_orders,
    load_books,
    plain,
    request_row,
    save_books,
)
from rebal.adapters.brokers.simulated.matching import MatchingEngine, arrival
from rebal.domain.ids import AccountId, ClientOrderId, Symbol
from rebal.domain.money import NO_MONEY, NO_SHARES, Money, Quantity
from rebal.domain.order import Order, OrderState, Side
from rebal.ports.broker import Allocation, BlockLeg, BrokerOrder, DuplicateOrder


def receive_block(
    conn: sa.Connection,
    matching: MatchingEngine,
    order: Order,
    legs: Sequence[BlockLeg],
    now: datetime,
) -> BrokerOrder:
    """Fund and receive the block ``order`` (see the module's docstring)."""
    if order.account != OMNIBUS:
        raise ValueError(f"a block order is placed in {OMNIBUS}, not {order.account}")
    _check_legs(order, legs)
    known = find_orders(conn, [order.client_order_id])
    if order.client_order_id in known:
        conn.execute(INSERT_REQUEST, request_row(now, "submit", order, "duplicate"))
        raise DuplicateOrder(known[order.client_order_id].reported())
    if not conn.execute(
        sa.select(t.accounts.c.account).where(t.accounts.c.account == OMNIBUS)
    ).first():
        conn.execute(
            sa.insert(t.accounts), {"account": OMNIBUS, "cash": NO_MONEY, "opened_at": now}
        )
    books = load_books(conn, [OMNIBUS, *(leg.account for leg in legs)])
    for book in books.values():
        matching.run_due(conn, book, now)
    save_books(conn, books.values())
    short = _unfunded(order, legs, books)
    moves = [] if short else _funding(order.symbol, order.side, legs)
    _move(conn, moves)
    (omnibus,) = load_books(conn, [OMNIBUS]).values()
    if short:  # refused before the market sees it: recorded rejected, nothing moved
        record = arrival(order, now, -1, OrderState.REJECTED, short)
        omnibus.received.append(record)
    else:
        record = matching.receive(conn, omnibus, order, now, -1)
        if record.state is OrderState.REJECTED:
            _move(conn, [(a, s, -q) for a, s, q in moves])
        else:
            matching.run_due(conn, omnibus, now)
    save_books(conn, [omnibus])  # the block stored before its legs name it
    if record.state is not OrderState.REJECTED:
        conn.execute(
            sa.insert(t.block_legs),
            [
                {
                    "block": order.client_order_id,
                    "client_order_id": leg.client_order_id,
                    "account": leg.account,
                    "quantity": leg.quantity,
                    "notional": leg.notional,
                }
                for leg in legs
            ],
        )
    conn.execute(INSERT_REQUEST, request_row(now, "submit", record, record.state.value))
    return record.reported()


def allocate(
    conn: sa.Connection,
    matching: MatchingEngine,
    block: ClientOrderId,
    allocations: Sequence[Allocation],
    now: datetime,
) -> list[Allocation]:
    """Move the ended ``block``'s fill to its legs as ``allocations`` say, once (see the
    module's docstring); the allocations made."""
    legs = conn.execute(
        sa.select(t.block_legs).where(t.block_legs.c.block == block).order_by(t.block_legs.c.seq)
    ).all()
    if not legs:
        raise ValueError(f"the simulated broker has no block order {block}")
    if legs[0].allocated_at is not None:
        return [_allocation(leg) for leg in legs]
    # lock the rows in the order a block's arrival locks them (by account id)
    books = load_books(conn, [OMNIBUS, *(AccountId(leg.account) for leg in legs)])
    matching.run_due(conn, books[OMNIBUS], now)
    save_books(conn, [books[OMNIBUS]])
    record = find_orders(conn, [block])[block]
    if record.working:
        raise ValueError(
            f"block order {block} is still {record.state}: allocate it once it has ended"
        )
    given = {a.client_order_id: a for a in allocations}
    if set(given) != {leg.client_order_id for leg in legs}:
        raise ValueError(f"the allocations of block {block} are not those of its legs")
    quantity = sum((a.quantity for a in allocations), NO_SHARES)
    amount = sum((a.amount for a in allocations), NO_MONEY)
    if quantity != record.filled_quantity or amount != record.filled_notional:
        raise ValueError(
            f"the allocations of block {block} sum to {plain(quantity)} shares and {amount}, "
            f"not its fill of {plain(record.filled_quantity)} for {record.filled_notional}"
        )
    symbol, sell = record.symbol, record.side is Side.SELL
    moves: list[tuple[AccountId, Symbol | None, Decimal]] = []
    for leg in legs:
        got = given[leg.client_order_id]
        if got.account != leg.account:
            raise ValueError(
                f"allocation {got.client_order_id} names {got.account}, not {leg.account}"
            )
        if sell:
            unsold = Quantity(leg.quantity - got.quantity)
            if unsold < 0:
                raise ValueError(f"allocation {got.client_order_id} sells more than its leg asked")
            moves += [(leg.account, None, got.amount), (leg.account, symbol, unsold)]
        else:
            unspent = Money(leg.notional - got.amount)
            if unspent < 0:
                raise ValueError(f"allocation {got.client_order_id} spends more than its leg asked")
            moves += [(leg.account, symbol, got.quantity), (leg.account, None, unspent)]
    _move(conn, moves)
    conn.execute(
        sa.update(t.block_legs)
        .where(t.block_legs.c.client_order_id == sa.bindparam("b_id"))
        .values(
            allocated_quantity=sa.bindparam("allocated_quantity"),
            allocated_amount=sa.bindparam("allocated_amount"),
            allocated_at=sa.bindparam("allocated_at"),
        ),
        [
            {
                "b_id": a.client_order_id,
                "allocated_quantity": a.quantity,
                "allocated_amount": a.amount,
                "allocated_at": now,
            }
            for a in (given[leg.client_order_id] for leg in legs)
        ],
    )
    conn.execute(INSERT_REQUEST, request_row(now, "allocate", record, record.state.value))
    return [given[leg.client_order_id] for leg in legs]


def _check_legs(order: Order, legs: Sequence[BlockLeg]) -> None:
    """``ValueError`` unless the legs ask, in the block's terms, exactly what the block asks."""
    if not legs:
        raise ValueError(f"block order {order.client_order_id} has no legs")
    if order.notional is not None:
        asked = [leg.notional for leg in legs]
        if any(a is None for a in asked) or sum(a for a in asked if a) != order.notional:
            raise ValueError(
                f"the legs of block {order.client_order_id} do not add up to its notional"
            )
    else:
        asked_shares = [leg.quantity for leg in legs]
        if (
            any(a is None for a in asked_shares)
            or sum(a for a in asked_shares if a) != order.quantity
        ):
            raise ValueError(
                f"the legs of block {order.client_order_id} do not add up to its quantity"
            )
    if order.side is Side.BUY and order.notional is None:
        raise ValueError("a block buy is given as a notional amount")


def _unfunded(
    order: Order, legs: Sequence[BlockLeg], books: Mapping[AccountId, AccountBook]
) -> str:
    """Why a leg's account cannot fund its part of the block ("" when every one can)."""
    for leg in legs:
        book = books.get(leg.account)
        if book is None:
            return f"block leg {leg.client_order_id}: no account {leg.account} at the broker"
        if order.side is Side.SELL:
            free = book.free_shares(order.symbol)
            if leg.quantity is not None and leg.quantity > free:
                return (
                    f"no short sales: block leg {leg.client_order_id} sells {plain(leg.quantity)} "
                    f"{order.symbol}, account {leg.account} has {plain(free)} not being sold"
                )
        else:
            power = book.free_cash()
            if leg.notional is not None and leg.notional > power:
                return (
                    f"insufficient buying power: block leg {leg.client_order_id} needs "
                    f"{leg.notional}, account {leg.account} has {power}"
                )
    return ""


def _funding(
    symbol: Symbol, side: Side, legs: Sequence[BlockLeg]
) -> list[tuple[AccountId, Symbol | None, Decimal]]:
    """The moves of a block's funding: each leg's shares or money out of its account."""
    if side is Side.SELL:
        return [(leg.account, symbol, Quantity(-(leg.quantity or NO_SHARES))) for leg in legs]
    return [(leg.account, None, Money(-(leg.notional or NO_MONEY))) for leg in legs]


def _move(
    conn: sa.Connection,
    moves: Sequence[tuple[AccountId, Symbol | None, Decimal]],
) -> None:
    """Move each ``(account, symbol or None for cash, change)`` between the account and the
    omnibus account: the account's holding changes by ``change``, the omnibus account's by the
    opposite."""
    totals: dict[tuple[AccountId, Symbol | None], Decimal] = {}
    for account, symbol, change in moves:
        for who, delta in ((account, change), (OMNIBUS, -change)):
            totals[(who, symbol)] = totals.get((who, symbol), Decimal(0)) + delta
    a, p = t.accounts.c, t.positions.c
    cash = [
        {"b_account": w, "delta": d}
        for (w, sym), d in sorted(totals.items(), key=_key)
        if sym is None and d
    ]
    if cash:
        conn.execute(
            sa.update(t.accounts)
            .where(a.account == sa.bindparam("b_account"))
            .values(cash=a.cash + sa.bindparam("delta", type_=t.Money)),
            cash,
        )
    shares = {k: d for k, d in totals.items() if k[1] is not None and d}
    if not shares:
        return
    held: dict[tuple[AccountId, Symbol | None], Decimal] = {}
    whose = sorted({w for w, _ in shares})
    for k in range(0, len(whose), 500):
        rows = conn.execute(
            sa.select(p.account, p.symbol, p.quantity).where(
                p.account.in_(whose[k : k + 500]), p.symbol.in_(sorted({s for _, s in shares}))
            )
        )
        held.update(((AccountId(w), Symbol(sym)), q) for w, sym, q in rows)
    added, changed, gone = [], [], []
    for (who, symbol), delta in sorted(shares.items(), key=_key):
        before = held.get((who, symbol))
        quantity = (before or NO_SHARES) + delta
        if quantity < 0:
            raise ValueError(f"account {who} would hold {plain(quantity)} {symbol}")
        where = {"b_account": who, "b_symbol": symbol}
        if before is None:
            added.append({"account": who, "symbol": symbol, "quantity": quantity})
        elif quantity == 0:
            gone.append(where)
        else:
            changed.append({**where, "quantity": quantity})
    position = (p.account == sa.bindparam("b_account")) & (p.symbol == sa.bindparam("b_symbol"))
    for statement, rows_of in (
        (sa.delete(t.positions).where(position), gone),
        (sa.update(t.positions).where(position).values(quantity=sa.bindparam("quantity")), changed),
        (sa.insert(t.positions), added),
    ):
        if rows_of:
            conn.execute(statement, rows_of)


def _key(item: tuple[tuple[AccountId, Symbol | None], Decimal]) -> tuple[str, str]:
    (who, symbol), _ = item
    return who, symbol or ""


def _allocation(row: sa.Row[Any]) -> Allocation:
    return Allocation(
        client_order_id=ClientOrderId(row.client_order_id),
        account=AccountId(row.account),
        quantity=Quantity(plain(row.allocated_quantity)),
        amount=Money(row.allocated_amount),
    )
