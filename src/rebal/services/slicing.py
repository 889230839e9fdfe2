"""TWAP and VWAP slicing: a parent order cut into child orders sent one slice at a time over a
window. Pure: the window's start is given, nothing is read or sent here.

A window of ``W`` minutes in ``N`` slices sends slice ``i`` (0-based) at ``start + W·i/N``, so
every child is sent within ``[start, start + W)``. A child's id is its parent's id and its
1-based slice index (``PARENT-3``), so a resume derives the same children and never sends one
twice.

Sizes are exact in units of the order: a cent of a notional, a micro-share of a quantity (a
whole share for a whole-share account). Slice ``i`` gets its weight's share of the parent's
units rounded down, and the last slice the remainder (plus any fraction of the parent finer than
a unit), so the children sum exactly to the parent. A slice of no unit is not sent. A sell's lot
instruction is cut with it: each child carries the picks its shares place, in order
(:meth:`~rebal.domain.order.LotInstruction.segment`).

* **TWAP**: equal weights.
* **VWAP**: each slice weighs the volume the intraday profile :data:`VOLUME_PROFILE` expects in
  its stretch of the window. The profile is U-shaped, per half hour of the regular session in
  New York (09:30 to 16:00, percent of the day's volume): heavy at the open and the close,
  light at midday. A window wholly outside the session (extended hours) has no expected
  volume and is sliced equally. The profile is by the clock: an early close is not known to it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise
from typing import Final
from zoneinfo import ZoneInfo

from rebal.domain.ids import ClientOrderId
from rebal.domain.money import CENT, MICRO, Money, Quantity
from rebal.domain.order import LotInstruction, Order, OrderState
from rebal.services.order_terms import Algo

_NEW_YORK: Final = ZoneInfo("America/New_York")
_HALF_HOUR: Final = timedelta(minutes=30)
_MICROSECOND: Final = timedelta(microseconds=1)
#: (start of the half hour in New York, percent of the day's volume), 09:30 to 16:00: sums to 100.
VOLUME_PROFILE: Final[tuple[tuple[time, Decimal], ...]] = (
    (time(9, 30), Decimal("12.0")),
    (time(10, 0), Decimal("9.0")),
    (time(10, 30), Decimal("7.5")),
    (time(11, 0), Decimal("6.5")),
    (time(11, 30), Decimal("6.0")),
    (time(12, 0), Decimal("5.5")),
    (time(12, 30), Decimal("5.5")),
    (time(13, 0), Decimal("5.5")),
    (time(13, 30), Decimal("6.0")),
    (time(14, 0), Decimal("6.5")),
    (time(14, 30), Decimal("7.5")),
    (time(15, 0), Decimal("9.0")),
    (time(15, 30), Decimal("13.5")),
)
#: Units per share of a fractional account's slices.
_SHARE_UNIT: Final = Decimal(1) / MICRO


@dataclass(frozen=True, slots=True)
class Slice:
    """A child order and the instant it is to be sent."""

    order: Order
    at: datetime


def child_order_id(parent: ClientOrderId, index: int) -> ClientOrderId:
    """The client order id of slice ``index`` (0-based) of ``parent``."""
    return ClientOrderId(f"{parent}-{index + 1}")


def expected_volume(start: datetime, end: datetime) -> Fraction:
    """The percent of a day's volume :data:`VOLUME_PROFILE` expects from ``start`` to ``end``
    (summed over the days the stretch touches)."""
    total = Fraction(0)
    day = start.astimezone(_NEW_YORK).date()
    while day <= end.astimezone(_NEW_YORK).date():
        for begins, percent in VOLUME_PROFILE:
            lo = datetime.combine(day, begins, _NEW_YORK)
            overlap = min(end, lo + _HALF_HOUR) - max(start, lo)
            if overlap > timedelta(0):
                share = Fraction(overlap // _MICROSECOND, _HALF_HOUR // _MICROSECOND)
                total += Fraction(percent) * share
        day += timedelta(days=1)
    return total


def _weights(algo: Algo, times: list[datetime]) -> list[Fraction]:
    if algo is Algo.VWAP:
        weights = [expected_volume(a, b) for a, b in pairwise(times)]
        if sum(weights):
            return weights
    return [Fraction(1)] * (len(times) - 1)


def slice_order(
    parent: Order,
    algo: Algo,
    start: datetime,
    window: timedelta,
    slices: int,
    *,
    whole_shares: bool = False,
) -> list[Slice]:
    """The children of ``parent`` over ``window`` from ``start`` in ``slices`` slices, by
    ``algo``, in the order they are sent (see the module's docstring)."""
    if slices < 1 or window <= timedelta(0):
        raise ValueError(f"order {parent.client_order_id}: slice a positive window at least once")
    size: Decimal
    if parent.notional is not None:
        size, unit = parent.notional, CENT
    else:
        assert parent.quantity is not None
        size = parent.quantity
        unit = Decimal(1) if whole_shares and size == size.to_integral_value() else _SHARE_UNIT
    times = [start + window * i / slices for i in range(slices + 1)]
    weights = _weights(algo, times)
    units = int(size // unit)
    counts = [int(units * w / sum(weights)) for w in weights[:-1]]
    amounts = [unit * c for c in counts]
    amounts.append(size - sum(amounts, Decimal(0)))
    out = []
    placed = Decimal(0)
    for index, amount in enumerate(amounts):
        if amount <= 0:
            continue
        lots = None if parent.lots is None else LotInstruction(parent.lots.segment(placed, amount))
        placed += amount
        child = Order(
            client_order_id=child_order_id(parent.client_order_id, index),
            account=parent.account,
            symbol=parent.symbol,
            side=parent.side,
            quantity=None if parent.quantity is None else Quantity(amount),
            notional=None if parent.notional is None else Money(amount),
            type=parent.type,
            limit_price=parent.limit_price,
            time_in_force=parent.time_in_force,
            extended_hours=parent.extended_hours,
            parent=parent.client_order_id,
            run=parent.run,
            reason=f"{algo.value} slice {index + 1} of {slices}",
            lots=lots,
        )
        out.append(Slice(child, times[index]))
    return out


def rolled_up(parent: Order, children: list[Order]) -> Order:
    """``parent`` as far as its ``children`` have got: their fills summed; ``filled`` when every
    child filled, ``canceled`` (the reason counting how the children ended) when all ended
    otherwise, ``partially_filled`` while some still work after a fill."""
    filled_quantity = Quantity(sum((c.filled_quantity for c in children), Decimal(0)))
    filled_notional = Money(sum((c.filled_notional for c in children), Decimal(0)))
    state, reason = parent.state, parent.reason
    if children and all(c.state is OrderState.FILLED for c in children):
        state = OrderState.FILLED
    elif children and all(c.state.terminal for c in children):
        ended = Counter(str(c.state) for c in children)
        state = OrderState.CANCELED
        reason = f"{parent.reason}; slices ended " + ", ".join(
            f"{n} {s}" for s, n in sorted(ended.items())
        )
    elif filled_quantity > 0:
        state = OrderState.PARTIALLY_FILLED
    if state is parent.state:
        return replace(parent, filled_quantity=filled_quantity, filled_notional=filled_notional)
    return parent.advance(
        state, filled_quantity=filled_quantity, filled_notional=filled_notional, reason=reason
    )
