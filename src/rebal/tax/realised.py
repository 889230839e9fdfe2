"""What a sale realised: the gain or loss of each lot a sell fill relieved.

When a sell fill is applied to the book (:func:`rebal.services.execution.apply_fills`) its shares
come off the lots its order's lot instruction names (:func:`relieve_instructed`), or without one the
symbol's lots oldest first (:func:`relieve`); each lot relieved, in full or in part, is one
:class:`RealisedLot`: the shares taken, the part of the fill's proceeds they earned (the fill's
exact amount split by shares, to the cent, the parts summing to it), the basis they carried and the
date the lot was acquired. Shares the book held without a basis (lots never imported), or not at
all, give a part whose basis, and so whose result, is unknown. The wash-sale check
(:mod:`rebal.services.compliance`) reads these: a known loss blocks buying the security back, a
known gain does not, an unknown result is treated as a possible loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Final

from rebal.domain.account import Holding
from rebal.domain.formatting import number_text
from rebal.domain.ids import AccountId, FillId, Symbol
from rebal.domain.money import (
    CENT,
    NO_MONEY,
    NO_SHARES,
    Money,
    Quantity,
    check_cents,
    check_quantity,
)
from rebal.domain.order import LotInstruction, LotPick
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


def _take(lot: Holding, shares: Decimal) -> tuple[Holding | None, Holding]:
    """``lot`` less ``shares`` of it (``None`` when nothing is left; its cost basis shrinks with
    it, to the cent) and the part taken, with the basis it carried."""
    rest = Quantity(lot.quantity - shares)
    basis: Money | None = None
    kept: Holding | None = None
    if rest > 0:
        basis = (
            None
            if lot.cost_basis is None
            else Money((lot.cost_basis * rest / lot.quantity).quantize(CENT))
        )
        kept = replace(lot, quantity=rest, cost_basis=basis)
    gone = None if lot.cost_basis is None else Money(lot.cost_basis - (basis or NO_MONEY))
    return kept, replace(lot, quantity=Quantity(shares), cost_basis=gone)


def relieve(
    lots: list[Holding], account: AccountId, symbol: Symbol, quantity: Decimal
) -> tuple[list[Holding], list[Holding]]:
    """``lots`` less ``quantity`` shares of ``symbol``, oldest lots first (a lot's cost basis
    shrinks with it, to the cent), and the shares relieved: a part of each lot taken with the
    basis it carried, then any shares no lot held, without a basis: how a sale without a lot
    instruction relieves lots (:func:`relieve_sale`)."""
    left = quantity
    out = []
    relieved = []
    for lot in lots:
        if lot.symbol != symbol or left <= 0:
            out.append(lot)
            continue
        taken = min(lot.quantity, left)
        left -= taken
        kept, part = _take(lot, taken)
        if kept is not None:
            out.append(kept)
        relieved.append(part)
    if left > 0:
        relieved.append(Holding(account=account, symbol=symbol, quantity=Quantity(left)))
    return out, relieved


#: How far a lot's cost basis may be from what a pick's cost per share gives for the lot's
#: shares and the lot still be the one the pick names (:func:`relieve_instructed`). Relief keeps
#: a lot's basis pro rata to the cent, so each sale of part of a lot moves it by at most half a
#: cent: this allows ten such sales, and another lot of the same day this close in cost would
#: realise the same result to within it.
LOT_MATCH: Final = Money(Decimal("0.05"))


def _match(lots: Sequence[Holding], symbol: Symbol, pick: LotPick) -> int | None:
    """The place in ``lots`` of the lot ``pick`` names: a lot of ``symbol`` acquired on the
    pick's date whose basis is within :data:`LOT_MATCH` of its shares at the pick's cost per
    share, the nearest if several (the first of equals); ``None`` when no lot is."""
    best: tuple[Decimal, int] | None = None
    for k, lot in enumerate(lots):
        if lot.symbol != symbol or lot.acquired != pick.acquired or lot.cost_basis is None:
            continue
        off = abs(lot.cost_basis - lot.quantity * pick.lot_basis / pick.lot_quantity)
        if off <= LOT_MATCH and (best is None or off < best[0]):
            best = (off, k)
    return None if best is None else best[1]


def relieve_instructed(
    lots: list[Holding],
    account: AccountId,
    symbol: Symbol,
    quantity: Decimal,
    picks: Sequence[LotPick],
) -> tuple[list[Holding], list[Holding], list[str]]:
    """``lots`` less ``quantity`` shares of ``symbol`` taken as ``picks`` say (the part of a
    sell's lot instruction one fill places, :meth:`~rebal.domain.order.LotInstruction.segment`):
    each pick's shares off the lot it names (:func:`_match`), in order; the shares a pick cannot
    place (its lot is gone, or holds fewer shares) and any beyond the picks come off the lots
    left oldest first, as :func:`relieve` takes them. Returns the lots, the shares relieved (the
    picks' parts, then the others) and what did not go as instructed, one line per pick."""
    out = list(lots)
    relieved: list[Holding] = []
    misses = []
    left = quantity
    for pick in picks:
        k = _match(out, symbol, pick)
        held = NO_SHARES if k is None else out[k].quantity
        taken = min(held, pick.quantity, left)
        if k is not None and taken > 0:
            kept, part = _take(out[k], taken)
            relieved.append(part)
            if kept is None:
                del out[k]
            else:
                out[k] = kept
            left -= taken
        if taken < pick.quantity:
            named = f"lot {pick.lot} (acquired {pick.acquired.isoformat()})"
            misses.append(
                f"{named} is no longer held"
                if k is None
                else f"{named} holds {number_text(held)} of the {number_text(pick.quantity)} "
                "shares named"
            )
    if left > 0:
        out, rest = relieve(out, account, symbol, left)
        relieved += rest
    return out, relieved, misses


def relieve_sale(
    lots: list[Holding],
    account: AccountId,
    symbol: Symbol,
    quantity: Decimal,
    instruction: LotInstruction | None,
    placed: Decimal,
) -> tuple[list[Holding], list[Holding], list[str]]:
    """``lots`` less ``quantity`` shares of a sell of ``symbol``: by its lot ``instruction`` from
    its share ``placed`` on (the shares the sell's earlier fills took,
    :func:`relieve_instructed`), or without one oldest first (:func:`relieve`, nothing to say).
    How a sell fill moves the book (:class:`rebal.services.book.SellRelief`) and how the
    wash-sale check estimates what a sale not yet filled will relieve
    (:mod:`rebal.services.compliance`)."""
    if instruction is None:
        out, relieved = relieve(lots, account, symbol, quantity)
        return out, relieved, []
    picks = instruction.segment(placed, quantity)
    return relieve_instructed(lots, account, symbol, quantity, picks)
