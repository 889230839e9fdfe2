"""What a sale realised: the gain or loss of each lot a sell fill relieved.

When a sell fill is applied to the book its shares come off the symbol's lots, oldest first
(:func:`rebal.services.execution.apply_fills`); each lot relieved, in full or in part, is one
:class:`RealisedLot`: the shares taken, the part of the fill's proceeds they earned (the fill's
exact amount split by shares, to the cent, the parts summing to it), the basis they carried and
the date the lot was acquired. Shares the book held without a basis (lots never imported), or
not at all, give a part whose basis, and so whose result, is unknown. The wash-sale check
(:mod:`rebal.services.compliance`) reads these: a known loss blocks buying the security back, a
known gain does not, an unknown result is treated as a possible loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from rebal.domain.account import Holding
from rebal.domain.ids import AccountId, FillId, Symbol
from rebal.domain.money import Money, Quantity, check_cents, check_quantity
from rebal.tax.lots import Term, holding_term
from rebal.tax.money import allocate


@dataclass(frozen=True, slots=True, kw_only=True)
class RealisedLot:
    """The part ``part`` (0, 1, ... in the order the lots were relieved) of sell fill ``fill``
    that came off one lot: ``quantity`` shares sold on ``sold`` (the fill's date in New York)
    for ``proceeds``, with the lot's relieved ``basis`` and ``acquired`` date (``None``: not
    known)."""

    fill: FillId
    part: int
    account: AccountId
    symbol: Symbol
    sold: date
    quantity: Quantity
    proceeds: Money
    basis: Money | None
    acquired: date | None

    def __post_init__(self) -> None:
        what = f"fill {self.fill} part {self.part}"
        if self.part < 0 or self.quantity <= 0:
            raise ValueError(f"{what}: the part must not be negative, the quantity positive")
        check_quantity(self.quantity, what)
        check_cents(self.proceeds, f"{what} proceeds")
        check_cents(self.basis, f"{what} basis")

    @property
    def result(self) -> Decimal | None:
        """The gain (positive) or loss (negative), exactly proceeds − basis; ``None`` when the
        basis is not known."""
        return None if self.basis is None else self.proceeds - self.basis

    @property
    def term(self) -> Term | None:
        """Short or long term, from the lot's acquired date (``None``: not known)."""
        return None if self.acquired is None else holding_term(self.acquired, self.sold)


def realised_lots(
    fill: FillId,
    *,
    sold: date,
    proceeds: Money,
    relieved: Sequence[Holding],
) -> tuple[RealisedLot, ...]:
    """The parts of sell fill ``fill`` sold on ``sold`` for ``proceeds`` (its exact amount), one
    per lot ``relieved`` (each with the shares taken and the basis they carried), the proceeds
    split over them by shares, the last part taking the remaining cents."""
    if not relieved:
        return ()
    shares = allocate(proceeds, [lot.quantity for lot in relieved])
    return tuple(
        RealisedLot(
            fill=fill,
            part=part,
            account=lot.account,
            symbol=lot.symbol,
            sold=sold,
            quantity=lot.quantity,
            proceeds=Money(amount),
            basis=lot.cost_basis,
            acquired=lot.acquired,
        )
        for part, (lot, amount) in enumerate(zip(relieved, shares, strict=True))
    )
