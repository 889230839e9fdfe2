"""Orders: what is sent to a broker, and the only ways its state may change.

Seed rules this module encodes: sells are in shares, buys in notional amounts (a whole-share
account buys in shares too); market orders are good for the day unless said otherwise. An order's
``client_order_id`` is chosen by rebal before anything is sent and never reused, so that a
retried submission can be recognised by the broker instead of trading twice.

States and their legal transitions are the table :data:`TRANSITIONS`; :func:`advance` is the one
place that applies it. ``new`` is an intent committed to the store but not yet sent;
``submitted`` is sent with no acknowledgement yet (after a crash, the broker must be asked
before anything is sent again).

A sell may carry a :class:`LotInstruction` (specific identification: which tax lots its shares
come off, in order): the book applies it when the sell's fills move the lots
(:func:`rebal.tax.realised.relieve_instructed`); a sell without one relieves the oldest lots
first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, Final

from rebal.domain.ids import AccountId, BrokerOrderId, ClientOrderId, FillId, RunId, Symbol
from rebal.domain.money import NO_MONEY, NO_SHARES, Money, Quantity, check_cents, check_quantity


class Side(StrEnum):
    """Buy or sell."""

    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    """How the price is set: at the market, or no worse than a limit."""

    MARKET = "market"
    LIMIT = "limit"


class TimeInForce(StrEnum):
    """How long an unfilled order stays working: the day (canceled at the close) or until
    canceled."""

    DAY = "day"
    GTC = "gtc"


class OrderState(StrEnum):
    """Where an order is in its life."""

    NEW = "new"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    PENDING_CANCEL = "pending_cancel"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"

    @property
    def terminal(self) -> bool:
        """Whether nothing more can happen to an order in this state."""
        return not TRANSITIONS[self]


_S = OrderState
_WORKING: Final = frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.EXPIRED})
#: state -> the states it may move to. A fill may be reported before the acknowledgement (or
#: with the acknowledgement lost), so a submitted order may be filled directly.
TRANSITIONS: Final[dict[OrderState, frozenset[OrderState]]] = {
    _S.NEW: frozenset({_S.SUBMITTED, _S.CANCELED, _S.REJECTED}),
    _S.SUBMITTED: _WORKING | {_S.ACCEPTED, _S.REJECTED, _S.PENDING_CANCEL},
    _S.ACCEPTED: _WORKING | {_S.PENDING_CANCEL},
    _S.PARTIALLY_FILLED: _WORKING | {_S.PENDING_CANCEL},
    _S.PENDING_CANCEL: _WORKING,
    _S.FILLED: frozenset(),
    _S.CANCELED: frozenset(),
    _S.EXPIRED: frozenset(),
    _S.REJECTED: frozenset(),
}


class IllegalTransition(ValueError):
    """A state change the table does not allow."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LotPick:
    """One tax lot a sell is to take shares from: ``quantity`` shares of the lot the planner
    named ``lot``, known to the book by what it held when planned (acquired on ``acquired``,
    ``lot_quantity`` shares for ``lot_basis``: the "versus purchase" identification of a lot by
    its date and cost per share)."""

    lot: str
    acquired: date
    lot_quantity: Quantity
    lot_basis: Money
    quantity: Quantity

    def __post_init__(self) -> None:
        what = f"lot {self.lot}"
        if not (0 < self.quantity <= self.lot_quantity) or self.lot_basis < 0:
            raise ValueError(
                f"{what}: take more than nothing and at most the lot's {self.lot_quantity} "
                f"shares (not {self.quantity}), from a basis not negative"
            )
        check_quantity(self.quantity, what)
        check_quantity(self.lot_quantity, what)
        check_cents(self.lot_basis, f"{what} basis")

    def as_dict(self) -> dict[str, Any]:
        """The pick as JSON-ready values (exact decimals)."""
        return {
            "lot": self.lot,
            "acquired": self.acquired.isoformat(),
            "lot_quantity": self.lot_quantity,
            "lot_basis": self.lot_basis,
            "quantity": self.quantity,
        }


@dataclass(frozen=True, slots=True)
class LotInstruction:
    """Specific identification of the lots a sell relieves: ``lots``, taken in this order, one
    pick per lot, their quantities summing to the order's."""

    lots: tuple[LotPick, ...]

    #: The relief method it instructs (the book's default, without an instruction, is FIFO).
    method: ClassVar[str] = "specific"

    def __post_init__(self) -> None:
        if not self.lots:
            raise ValueError("a lot instruction names at least one lot")
        names = [p.lot for p in self.lots]
        if len(set(names)) != len(names):
            raise ValueError(f"a lot instruction names a lot twice: {', '.join(names)}")

    @property
    def quantity(self) -> Quantity:
        """The shares it places: the sum of its picks'."""
        return Quantity(sum((p.quantity for p in self.lots), NO_SHARES))

    def segment(self, start: Decimal, quantity: Decimal) -> tuple[LotPick, ...]:
        """The picks that place the instruction's shares from ``start`` (the shares earlier
        fills of the order took) to ``start + quantity``, in order, each cut to its part of that
        stretch; fewer shares than ``quantity`` when the stretch runs past the instruction."""
        out = []
        before = Decimal(0)
        for pick in self.lots:
            low = max(start, before)
            high = min(start + quantity, before + pick.quantity)
            before += pick.quantity
            if high > low:
                out.append(replace(pick, quantity=Quantity(high - low)))
        return tuple(out)

    def as_dict(self) -> dict[str, Any]:
        """The instruction as JSON-ready values (``lot_instruction`` of an order in a run's
        JSON, and its stored form)."""
        return {"method": self.method, "lots": [p.as_dict() for p in self.lots]}

    @classmethod
    def of_dict(cls, data: Mapping[str, Any]) -> LotInstruction:
        """The instruction :meth:`as_dict` gave (decimals as numbers or their text)."""
        if data.get("method") != cls.method:
            raise ValueError(f"unknown lot relief method {data.get('method')!r}")
        return cls(
            tuple(
                LotPick(
                    lot=str(p["lot"]),
                    acquired=date.fromisoformat(p["acquired"]),
                    lot_quantity=Quantity(Decimal(str(p["lot_quantity"]))),
                    lot_basis=Money(Decimal(str(p["lot_basis"]))),
                    quantity=Quantity(Decimal(str(p["quantity"]))),
                )
                for p in data["lots"]
            )
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    """One order of one account, as rebal intends it and as far as it has got.

    Exactly one of ``quantity`` (shares) and ``notional`` (money) is set. ``parent`` names the
    order a child slice of a TWAP/VWAP parent belongs to. ``lots``, of a sell in shares only, is
    its lot instruction (``None``: the oldest lots first).
    """

    client_order_id: ClientOrderId
    account: AccountId
    symbol: Symbol
    side: Side
    quantity: Quantity | None = None
    notional: Money | None = None
    type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    extended_hours: bool = False
    state: OrderState = OrderState.NEW
    filled_quantity: Quantity = NO_SHARES
    filled_notional: Money = NO_MONEY
    broker_order_id: BrokerOrderId | None = None
    parent: ClientOrderId | None = None
    reason: str = ""
    run: RunId | None = None  # the run that placed it
    submitted_at: datetime | None = None  # when it was sent (the watch on delayed orders)
    lots: LotInstruction | None = None

    def __post_init__(self) -> None:
        if (self.quantity is None) == (self.notional is None):
            raise ValueError(
                f"order {self.client_order_id}: give a quantity or a notional, not both"
            )
        size = self.quantity if self.quantity is not None else self.notional
        if size is None or not size > 0:
            raise ValueError(f"order {self.client_order_id}: size must be positive, not {size}")
        if (self.type is OrderType.LIMIT) != (self.limit_price is not None):
            raise ValueError(f"order {self.client_order_id}: a limit order needs a limit price")
        if self.filled_quantity < 0 or self.filled_notional < 0:
            raise ValueError(f"order {self.client_order_id}: fills cannot be negative")
        check_quantity(self.quantity, f"order {self.client_order_id}")
        check_quantity(self.filled_quantity, f"filled quantity of {self.client_order_id}")
        check_cents(self.notional, f"notional of order {self.client_order_id}")
        if self.submitted_at is not None and self.submitted_at.tzinfo is None:
            raise ValueError(f"order {self.client_order_id}: time must be timezone-aware")
        if self.lots is not None and (
            self.side is not Side.SELL or self.lots.quantity != self.quantity
        ):
            raise ValueError(
                f"order {self.client_order_id}: a lot instruction is a sell's in shares, its "
                f"lots summing to the order's quantity ({self.lots.quantity} vs {self.quantity})"
            )

    @property
    def filled_avg_price(self) -> Decimal | None:
        """Average price of what has filled, ``None`` before any fill."""
        if not self.filled_quantity:
            return None
        return self.filled_notional / self.filled_quantity

    def advance(self, state: OrderState, **changes: object) -> Order:
        """This order in ``state`` (with ``changes`` to other fields); raises
        :class:`IllegalTransition` when the table does not allow the move."""
        return advance(self, state, **changes)


def check_transition(order: ClientOrderId, current: OrderState, new: OrderState) -> None:
    """Raise :class:`IllegalTransition` unless ``current -> new`` is in :data:`TRANSITIONS` or
    repeats the state of an order that is still working (a second partial fill)."""
    repeat = new is current is OrderState.PARTIALLY_FILLED
    if not repeat and new not in TRANSITIONS[current]:
        raise IllegalTransition(f"order {order} cannot go from {current} to {new}")


#: What names an order: none of it changes once the order is stored.
IDENTITY: Final = (
    "account",
    "symbol",
    "side",
    "quantity",
    "notional",
    "type",
    "limit_price",
    "time_in_force",
    "extended_hours",
    "parent",
    "run",
    "lots",
)


def check_update(before: Order, after: Order) -> None:
    """Raise unless ``after`` is a legal next state of the stored ``before``: the same order
    (:data:`IDENTITY` unchanged, else ``ValueError``) moved along the table or kept in its
    state (:class:`IllegalTransition`)."""
    changed = [name for name in IDENTITY if getattr(before, name) != getattr(after, name)]
    if changed:
        raise ValueError(f"order {before.client_order_id}: {', '.join(changed)} cannot change")
    if after.state is not before.state:
        check_transition(before.client_order_id, before.state, after.state)


def advance(order: Order, state: OrderState, **changes: object) -> Order:
    """``order`` moved to ``state`` (see :func:`check_transition`), with ``changes`` to its other
    fields."""
    check_transition(order.client_order_id, order.state, state)
    return replace(order, state=state, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True, kw_only=True)
class Fill:
    """An execution reported by a broker: part or all of an order, at one price."""

    id: FillId
    client_order_id: ClientOrderId
    account: AccountId
    symbol: Symbol
    side: Side
    quantity: Quantity
    price: Decimal
    at: datetime

    def __post_init__(self) -> None:
        if not (self.quantity > 0 and self.price > 0):
            raise ValueError(f"fill {self.id}: quantity and price must be positive")
        check_quantity(self.quantity, f"fill {self.id}")
        if self.at.tzinfo is None:
            raise ValueError(f"fill {self.id}: time must be timezone-aware")
