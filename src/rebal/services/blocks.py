"""Block orders: a batch run's orders of one symbol and side traded as one order, its fill
allocated back to the accounts pro rata (``rebal run --model NAME|--all --block-orders``).

By default every account trades its own orders and nothing is crossed between accounts.
With ``--block-orders`` each leg of the run (the sells, then the buys) is traded as one
**block order per symbol and side** from the broker's omnibus account
(:class:`~rebal.ports.broker.TradesBlocks`): the sells of VTI of every account in one block,
the buys of BND in another. Buys are never netted against sells, across accounts or within
one: that would be internal crossing. Each account's own order stays the record of what it
asked and got (its client order id, ``filled_quantity``, average price, its fill in the book).

The steps of a leg (:func:`trade_blocks`), each safe to repeat after a crash:

1. the leg's account orders are marked ``submitted`` and committed (the intent) before any
   block is sent;
2. each block is asked for at the broker by its client order id (:func:`block_order_id`,
   ``RUN-BLOCK-SYMBOL-s|b``, fixed by the run, symbol and side) and sent only when the broker
   never got it, so no block is sent twice; the broker moves each leg's shares (a sell) or
   money (a buy) to the omnibus account as the block arrives;
3. the run waits (``--max-wait``) until every block has ended; one still working then is
   canceled and the run ends ``timeout`` once what it filled is allocated;
4. an ended block's fill is allocated (:func:`rebal.domain.allocation.allocate_block`: pro rata,
   largest remainder, ties by a rotation seeded by the block's id), the broker moves each
   account's part (and what did not fill) back to the account, once, and the book records each
   account's order ``filled`` (or as the block ended) with its fill at its price, in one unit
   of work with the account's cash and lots, and an event of the run lists the allocation.

Buys are sized, as in every run, from the cash each account's sells actually raised (its
allocated money), after every sell block has been allocated.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING

from rebal.domain.allocation import Allocated, allocate_block
from rebal.domain.ids import ClientOrderId, FillId, RunId, Symbol
from rebal.domain.money import NO_MONEY, NO_SHARES, Money, Quantity
from rebal.domain.order import Fill, Order, OrderState, Side
from rebal.domain.run import RunState
from rebal.ports.broker import (
    Allocation,
    BlockLeg,
    BrokerError,
    BrokerOrder,
    BrokerUnavailable,
    DuplicateOrder,
    TradesBlocks,
)

if TYPE_CHECKING:
    from rebal.services.execution import _Execution

#: The key of the option in a run's proposal config.
KEY = "block_orders"


def trades_in_blocks(config: str | None) -> bool:
    """Whether a run with this proposal config trades in block orders."""
    return bool(json.loads(config or "{}").get(KEY, False))


def check_block_options(batch: bool, options: Mapping[str, object]) -> None:
    """``ValueError`` (naming the option) unless a run with these options may trade in block
    orders: a batch (``--model`` or ``--all``), fractional, at market, not sliced."""
    if not batch:
        raise ValueError("--block-orders is for a batch: give --model NAME or --all")
    if options.get("whole_shares"):
        raise ValueError("--block-orders buys by amount: it does not take --whole-shares")
    if options.get("order_type", "market") != "market":
        raise ValueError("--block-orders trades at market: it does not take --order-type limit")
    if options.get("algo") is not None:
        raise ValueError("--block-orders sends each block whole: it does not take --algo")


def block_order_id(run: RunId, symbol: Symbol, side: Side) -> ClientOrderId:
    """The block's client order id: fixed by its run, symbol and side, so a resend after a
    crash carries the same id and the broker never takes the block twice."""
    return ClientOrderId(f"{run}-BLOCK-{symbol}-{side.value[0]}")


def trade_blocks(ex: _Execution, ids: Sequence[ClientOrderId]) -> tuple[RunState, str] | None:
    """Trade the leg's orders ``ids`` in blocks (see the module's docstring); the state and
    reason the run ends in when it cannot go on (a block still working after the wait, a broker
    that takes no blocks), ``None`` when every block ended and was allocated."""
    broker = ex.broker
    if not isinstance(broker, TradesBlocks):
        return RunState.ERROR, f"the broker {broker.name} takes no block orders"
    now = ex.clock.now()
    fresh = [
        o.advance(OrderState.SUBMITTED, submitted_at=now)
        for o in ex.stored(ids)
        if o.state is OrderState.NEW
    ]
    if fresh:
        with ex.uow("block intents") as uow:
            uow.orders.update(fresh)
            uow.commit()
    groups = _open_blocks(ex, ids)
    answers: dict[ClientOrderId, BrokerOrder | None] = {}

    def send(cid: ClientOrderId) -> None:
        try:
            answers[cid] = _send(ex, broker, cid, groups[cid])
        except _Refused:
            answers.pop(cid, None)

    for cid in groups:
        send(cid)
    waited = 0.0
    while True:
        working = [cid for cid, a in answers.items() if a is None or not a.state.terminal]
        if not working or waited >= ex.settings.max_wait_seconds:
            break
        ex.clock.sleep(ex.settings.poll_seconds)
        waited += ex.settings.poll_seconds
        for cid in working:
            send(cid)
    for cid in working:
        if answers[cid] is not None:
            answers[cid] = ex.ask(partial(broker.cancel, cid))
        else:  # every send's answer was lost and the broker never got it
            _end_unsent(ex, groups[cid], "the block never reached the broker")
    try:
        _allocate(
            ex,
            broker,
            [(groups[c], a) for c, a in answers.items() if a is not None and a.state.terminal],
        )
    except ValueError as exc:  # a fill too small to give each account a cent: left to operations
        return RunState.ERROR, f"a block's fill cannot be allocated: {exc}"
    if working:
        return (
            RunState.TIMEOUT,
            f"still working after {ex.settings.max_wait_seconds:g} s, canceled: "
            + ", ".join(working),
        )
    return None


def cancel_blocks(ex: _Execution) -> None:
    """Cancel a run's working blocks at the broker and allocate what they filled (``rebal runs
    cancel``); a block the broker never got is not sent, its orders are canceled."""
    broker = ex.broker
    if not isinstance(broker, TradesBlocks):
        return
    ids = [o.client_order_id for o in ex.stored_run() if o.parent is None]
    ended = []
    for cid, orders in _open_blocks(ex, ids).items():
        known = ex.ask(partial(broker.order, cid))
        if known is not None and not known.state.terminal:
            known = ex.ask(partial(broker.cancel, cid))
        if known is None:
            _end_unsent(ex, orders, "run canceled")
        elif known.state.terminal:
            ended.append((orders, known))
    _allocate(ex, broker, ended)


def _end_unsent(ex: _Execution, orders: Sequence[Order], reason: str) -> None:
    """Cancel the orders of a block the broker never got."""
    with ex.uow("cancel block intents") as uow:
        uow.orders.update(
            [o.advance(OrderState.CANCELED, reason=reason) for o in orders if not o.state.terminal]
        )
        uow.commit()


def _open_blocks(ex: _Execution, ids: Sequence[ClientOrderId]) -> dict[ClientOrderId, list[Order]]:
    """The blocks of the orders ``ids`` with an order not yet ended: block id -> its orders."""
    groups: dict[ClientOrderId, list[Order]] = defaultdict(list)
    for order in ex.stored(ids):
        groups[block_order_id(ex.run, order.symbol, order.side)].append(order)
    return {
        cid: orders
        for cid, orders in sorted(groups.items())
        if any(not o.state.terminal for o in orders)
    }


def _send(
    ex: _Execution, broker: TradesBlocks, cid: ClientOrderId, orders: Sequence[Order]
) -> BrokerOrder | None:
    """The block as the broker has it, sent first when it never got it; ``None`` when the
    answer was lost (asked again on the next round)."""
    known = ex.ask(partial(ex.broker.order, cid))
    if known is not None:
        return known
    first = orders[0]
    by_amount = first.notional is not None
    block = Order(
        client_order_id=cid,
        account=broker.omnibus,
        symbol=first.symbol,
        side=first.side,
        quantity=None
        if by_amount
        else Quantity(sum((o.quantity or NO_SHARES for o in orders), NO_SHARES)),
        notional=Money(sum((o.notional or NO_MONEY for o in orders), NO_MONEY))
        if by_amount
        else None,
        type=first.type,
        limit_price=first.limit_price,
        extended_hours=first.extended_hours,
        run=first.run,
    )
    legs = [
        BlockLeg(
            client_order_id=o.client_order_id,
            account=o.account,
            quantity=o.quantity,
            notional=o.notional,
        )
        for o in orders
    ]
    try:
        return broker.submit_block(block, legs)
    except DuplicateOrder as exc:
        return exc.existing
    except BrokerUnavailable:
        return None
    except BrokerError as exc:  # refused outright: the broker recorded nothing
        with ex.uow("block refused") as uow:
            uow.orders.update(
                [o.advance(OrderState.REJECTED, reason=f"block {cid}: {exc}") for o in orders]
            )
            uow.commit()
        raise _Refused(cid) from exc


class _Refused(Exception):
    """The broker refused a block outright (its orders are stored ``rejected``)."""


def _allocate(
    ex: _Execution, broker: TradesBlocks, ended: Sequence[tuple[Sequence[Order], BrokerOrder]]
) -> None:
    """Allocate each ended block's fill to its orders at the broker (once), then record every
    order's part and fill in the book, with the accounts' cash and lots, and an event per block,
    in one unit of work."""
    ended = [(o, b) for o, b in ended if any(not x.state.terminal for x in o)]
    if not ended:
        return
    moved: list[Order] = []
    fills: list[Fill] = []
    events = []
    for orders, block in ended:
        parts = _parts(ex, broker, orders, block)
        for o in orders:
            if o.state.terminal:  # recorded before (a block's orders are recorded together)
                continue
            part = parts[o.client_order_id]
            if part.quantity:
                fills.append(
                    Fill(
                        id=FillId(f"{o.client_order_id}-allocated"),
                        client_order_id=o.client_order_id,
                        account=o.account,
                        symbol=o.symbol,
                        side=o.side,
                        quantity=Quantity(part.quantity),
                        price=part.price(block.filled_avg_price or NO_MONEY),
                        at=block.updated_at,
                    )
                )
            reason = (
                o.reason
                if block.state is OrderState.FILLED
                else f"block {block.client_order_id} {block.state}: "
                f"{block.reason or 'by the broker'}"
            )
            moved.append(
                o.advance(
                    block.state,
                    filled_quantity=Quantity(part.quantity),
                    filled_notional=Money(part.amount),
                    reason=reason,
                )
            )
        events.append(_allocation_event(block, orders, parts))
    from rebal.services.execution import apply_fills  # the module that imports this one

    with ex.uow("allocate blocks") as uow:
        uow.orders.update(moved)
        apply_fills(uow, uow.fills.add(fills))
        for event in events:
            uow.runs.note(ex.run, ex.clock.now(), event)
        uow.commit()


def _parts(
    ex: _Execution, broker: TradesBlocks, orders: Sequence[Order], block: BrokerOrder
) -> dict[ClientOrderId, Allocated]:
    """Each order's part of the ended ``block``'s fill, as the broker allocated it (asked to
    allocate it now, or returning what it allocated before); nothing of a rejected block."""
    if block.state is OrderState.REJECTED and not block.filled_quantity:
        return {o.client_order_id: Allocated(NO_SHARES, NO_MONEY) for o in orders}
    notional = orders[0].notional is not None
    requests = {
        o.client_order_id: (o.notional if notional else o.quantity) or NO_SHARES for o in orders
    }
    parts = (
        allocate_block(
            requests,
            block.filled_quantity,
            block.filled_notional,
            notional=notional,
            seed=block.client_order_id,
        )
        if block.filled_quantity
        else {k: Allocated(NO_SHARES, NO_MONEY) for k in requests}
    )
    allocations = [
        Allocation(
            client_order_id=o.client_order_id,
            account=o.account,
            quantity=Quantity(parts[o.client_order_id].quantity),
            amount=Money(parts[o.client_order_id].amount),
        )
        for o in orders
    ]
    made = ex.ask(partial(broker.allocate, block.client_order_id, allocations))
    return {a.client_order_id: Allocated(a.quantity, a.amount) for a in made}


def _text(quantity: Decimal) -> str:
    """A quantity as plain text, without trailing zeros or an exponent."""
    return format(quantity.normalize(), "f")


def _allocation_event(
    block: BrokerOrder, orders: Sequence[Order], parts: Mapping[ClientOrderId, Allocated]
) -> str:
    """The run's event of a block's allocation: what it filled and each account's part."""
    each = ", ".join(
        f"{o.account} {_text(parts[o.client_order_id].quantity)} for "
        f"{parts[o.client_order_id].amount}"
        for o in orders
    )
    price = "" if block.filled_avg_price is None else f" at {block.filled_avg_price} average"
    return (
        f"block {block.client_order_id} {block.state}: {block.side} "
        f"{_text(block.filled_quantity)} {block.symbol}{price} for {block.filled_notional}, "
        f"allocated to {len(orders)} account(s) pro rata (largest remainder, ties by a rotation "
        f"seeded by the block's id): {each}"
    )
