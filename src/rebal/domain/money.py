"""Exact money and share quantities, and the rounding rules of each, stated once.

* **Money** is a ``Decimal`` of whole cents. An amount computed from a quantity and a price (a
  sale's proceeds, a purchase's cost, a lot's share of either) is rounded **once**, to the cent,
  half to even (the bankers' rule brokers use), by :func:`amount_of`; what is split afterwards is
  split from that one amount (:func:`rebal.tax.money.allocate`), so parts always sum to it.
* A **quantity** of shares is a ``Decimal`` with at most :data:`QUANTITY_PLACES` decimal places
  (brokers report fractional shares to 9 places).
* The core computes on integers: cents, and quantities in micro-shares (10^-6). A held quantity
  enters the core rounded **down** to the micro-share (:func:`micro_floor`), so the core can never
  sell a share that is not held; the exact quantity stays at the edge.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import NewType

Money = NewType("Money", Decimal)
Quantity = NewType("Quantity", Decimal)

CENT = Decimal("0.01")
#: Decimal places of a share quantity rebal accepts and keeps exactly.
QUANTITY_PLACES = 9
QUANTITY_STEP = Decimal(1).scaleb(-QUANTITY_PLACES)
#: The core's unit of quantity: micro-shares per share.
MICRO = 1_000_000
_MICRO_STEP = Decimal(1).scaleb(-6)
#: Zero money and zero shares, for defaults.
NO_MONEY = Money(Decimal("0.00"))
NO_SHARES = Quantity(Decimal(0))


def cents(amount: Decimal) -> Money:
    """``amount`` rounded to the cent, half to even."""
    return Money(amount.quantize(CENT, rounding=ROUND_HALF_EVEN))


def amount_of(quantity: Decimal, price: Decimal) -> Money:
    """The money value of ``quantity`` shares at ``price``: the one rounding of a trade's amount."""
    return cents(quantity * price)


def from_cents(count: int) -> Money:
    """Integer cents (the core's form) as money."""
    return Money(Decimal(int(count)).scaleb(-2))


def to_cents(amount: Decimal) -> int:
    """Money as integer cents; ``amount`` must be a whole number of cents."""
    scaled = amount.scaleb(2)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of cents")
    return int(scaled)


def from_micro(count: int) -> Quantity:
    """Integer micro-shares (the core's form) as a quantity."""
    return Quantity(Decimal(int(count)).scaleb(-6))


def from_micro_nano(micro: int, nano: int) -> Quantity:
    """Whole micro-shares and the nano-shares held below them (what a held quantity of up to
    :data:`QUANTITY_PLACES` decimals is split into: the core's part and the rest kept at the
    edge) as one exact quantity."""
    whole = from_micro(micro)
    return Quantity(whole + Decimal(int(nano)).scaleb(-QUANTITY_PLACES)) if nano else whole


def micro_floor(quantity: Decimal) -> int:
    """A quantity in whole micro-shares, rounded down (never more than is held)."""
    return int(quantity.quantize(_MICRO_STEP, rounding=ROUND_FLOOR).scaleb(6))


def _fits(value: Decimal, step: Decimal) -> bool:
    try:
        return value.is_finite() and value.quantize(step) == value
    except InvalidOperation:  # more digits than a Decimal context holds
        return False


def check_cents(amount: Decimal | None, what: str) -> None:
    """Raise ``ValueError`` unless ``amount`` (``None`` passes) is a whole number of cents."""
    if amount is not None and not _fits(amount, CENT):
        raise ValueError(f"{what} must be a whole number of cents, not {amount}")


def check_quantity(quantity: Decimal | None, what: str) -> None:
    """Raise ``ValueError`` unless ``quantity`` (``None`` passes) has at most
    :data:`QUANTITY_PLACES` decimal places."""
    if quantity is not None and not _fits(quantity, QUANTITY_STEP):
        raise ValueError(
            f"{what} has more than {QUANTITY_PLACES} decimal places (or is too large): {quantity}"
        )
