"""Tax lots, the holding-period rule, and lot relief (which lots a sale consumes).

A tax lot is a quantity of one security bought on one date for one total cost basis. Selling part
of a position "relieves" lots: the method decides which ones, and so how much gain is realised and
whether it is short or long term. Methods (chosen per account, per run):

- ``fifo``: oldest lots first (the IRS default when shares are not identified).
- ``lifo``: newest lots first.
- ``hifo``: highest cost per share first (usually the smallest gain).
- ``specific``: the lots the user names, in the order named (specific identification).
- ``min-tax``: losses first (largest loss per share first), then long-term gains (smallest gain
  per share first), short-term gains last (smallest first). For the same quantity it never costs
  more estimated tax (`rebal.tax.rates.estimated_tax`) than FIFO: it takes only losses when there
  are enough of them, and otherwise every loss and the cheapest gains, while FIFO must take every
  long-term lot before any short-term one. Given the tax rates (`rates=`), ``min-tax`` ranks lots
  by their tax per share instead (gain per share × the rate of its term, losses negative): a
  small short-term gain may then go before a large long-term one, and the marginal tax of the
  sale (short-term result × rate + long-term result × rate) is the least possible for the
  quantity.
- ``average``: single-category average cost (mutual funds, IRS Pub 564/550): every share has the
  average basis of the position; the shares sold are the oldest ones for the holding period.

Holding period (IRS Pub 544/550): it starts the day after the acquisition date; a gain is long
term when the security was held MORE than one year. Bought 2024-06-19: a sale on 2025-06-19 is
still short term, a sale on 2025-06-20 is long term. `first_long_term_day` states it exactly.

Partial lots keep their basis pro rata, rounded to the cent; the remainder stays with the lot, so
relieved basis plus remaining basis always equals the basis before the sale.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from rebal.tax.money import ZERO, allocate, share_of
from rebal.tax.rates import TaxRates


class LotMethod(StrEnum):
    """How a sale picks the lots it consumes."""

    FIFO = "fifo"
    LIFO = "lifo"
    HIFO = "hifo"
    SPECIFIC = "specific"
    MIN_TAX = "min-tax"
    AVERAGE = "average"


class Term(StrEnum):
    """Short term (held one year or less) or long term (held more than one year)."""

    SHORT = "short"
    LONG = "long"


def first_long_term_day(acquired: date) -> date:
    """The first sale date on which a lot acquired on `acquired` is held more than one year.

    The holding period starts the day after acquisition; one year later that day begins the
    long-term period. A period starting on 29 February reaches its year on 1 March.
    """
    start = acquired + timedelta(days=1)
    try:
        return start.replace(year=start.year + 1)
    except ValueError:  # start is 29 February and the next year has none
        return date(start.year + 1, 3, 1)


def holding_term(acquired: date, sold: date) -> Term:
    """Short or long term for shares acquired on `acquired` and sold on `sold`."""
    if sold < acquired:
        raise ValueError(f"sale date {sold} is before the acquisition date {acquired}")
    return Term.LONG if sold >= first_long_term_day(acquired) else Term.SHORT


@dataclass(frozen=True)
class TaxLot:
    """Shares of one security bought on one date: quantity and total cost basis (Decimal)."""

    lot_id: str
    quantity: Decimal
    cost_basis: Decimal
    acquired: date

    def __post_init__(self) -> None:
        if self.quantity <= 0:
            raise ValueError(f"lot {self.lot_id}: quantity must be positive, got {self.quantity}")
        if self.cost_basis < 0:
            raise ValueError(f"lot {self.lot_id}: cost basis is negative ({self.cost_basis})")

    @property
    def cost_per_share(self) -> Decimal:
        """Basis per share (unrounded)."""
        return self.cost_basis / self.quantity


@dataclass(frozen=True)
class LotSale:
    """The part of one lot that a sale consumed, with its proceeds and realised gain."""

    lot_id: str
    quantity: Decimal
    basis: Decimal
    proceeds: Decimal
    acquired: date
    sold: date
    term: Term

    @property
    def gain(self) -> Decimal:
        """Realised gain (negative: a loss)."""
        return self.proceeds - self.basis


class SoldLots:
    """Totals over ``sales``, the lot parts of one sale (shared by reliefs and harvests)."""

    sales: tuple[LotSale, ...]

    @property
    def quantity(self) -> Decimal:
        """Shares sold."""
        return sum((s.quantity for s in self.sales), ZERO)

    @property
    def proceeds(self) -> Decimal:
        """Total proceeds."""
        return sum((s.proceeds for s in self.sales), ZERO)

    @property
    def basis(self) -> Decimal:
        """Total basis relieved."""
        return sum((s.basis for s in self.sales), ZERO)

    @property
    def realised_st(self) -> Decimal:
        """Net short-term gain (negative: net loss)."""
        return sum((s.gain for s in self.sales if s.term is Term.SHORT), ZERO)

    @property
    def realised_lt(self) -> Decimal:
        """Net long-term gain (negative: net loss)."""
        return sum((s.gain for s in self.sales if s.term is Term.LONG), ZERO)


@dataclass(frozen=True)
class Relief(SoldLots):
    """Result of relieving lots for one sale: the lot parts sold and the lots left."""

    sales: tuple[LotSale, ...]
    remaining: tuple[TaxLot, ...]


def _min_tax_key(
    lot: TaxLot, price: Decimal, as_of: date, rates: TaxRates | None
) -> tuple[int, Decimal]:
    """Without rates: losses (and break-even) first by gain per share, then LT gains, then ST
    gains. With rates: by tax per share."""
    gain = price - lot.cost_per_share
    long = holding_term(lot.acquired, as_of) is Term.LONG
    if rates is not None:
        return (0, gain * (rates.long_term_total if long else rates.short_term_total))
    if gain <= 0:
        return (0, gain)
    return (1 if long else 2, gain)


def relief_order(
    lots: Sequence[TaxLot],
    method: LotMethod,
    price: Decimal,
    as_of: date,
    lot_ids: Sequence[str] | None = None,
    rates: TaxRates | None = None,
) -> list[int]:
    """Indices of `lots` in the order `method` consumes them (ties: older, then input order)."""
    idx = range(len(lots))
    if method in (LotMethod.FIFO, LotMethod.AVERAGE):
        return sorted(idx, key=lambda i: (lots[i].acquired, i))
    if method is LotMethod.LIFO:
        return sorted(idx, key=lambda i: (lots[i].acquired, i), reverse=True)
    if method is LotMethod.HIFO:
        return sorted(idx, key=lambda i: (-lots[i].cost_per_share, lots[i].acquired, i))
    if method is LotMethod.MIN_TAX:
        keys = {i: _min_tax_key(lots[i], price, as_of, rates) for i in idx}
        return sorted(idx, key=lambda i: (*keys[i], lots[i].acquired, i))
    if not lot_ids:
        raise ValueError("specific identification needs the lot ids to sell")
    position = {lot.lot_id: i for i, lot in enumerate(lots)}
    unknown = [lot_id for lot_id in lot_ids if lot_id not in position]
    if unknown:
        raise ValueError(f"unknown lot id(s) for specific identification: {', '.join(unknown)}")
    if len(set(lot_ids)) != len(lot_ids):
        raise ValueError("a lot id is named twice for specific identification")
    return [position[lot_id] for lot_id in lot_ids]


def relieve_lots(
    lots: Sequence[TaxLot],
    quantity: Decimal,
    method: LotMethod,
    price: Decimal,
    as_of: date,
    *,
    lot_ids: Sequence[str] | None = None,
    proceeds: Decimal | None = None,
    rates: TaxRates | None = None,
) -> Relief:
    """Sell `quantity` shares at `price` on `as_of` out of `lots` using `method`.

    Lots may be consumed partially. `lot_ids` names the lots for specific identification;
    `rates` makes ``min-tax`` rank lots by tax per share (module docstring).
    `proceeds` is the exact total when `quantity * price` is not (it defaults to that product);
    it is split over the lot parts pro rata to quantity, cent-rounded, summing exactly. Raises
    ValueError for a non-positive quantity, for selling more than is held (no shorting) or more
    than the named lots hold.
    """
    if quantity <= 0:
        raise ValueError(f"quantity to sell must be positive, got {quantity}")
    held = sum((lot.quantity for lot in lots), ZERO)
    if quantity > held:
        raise ValueError(f"cannot sell {quantity}: only {held} held")
    order = relief_order(lots, method, price, as_of, lot_ids, rates)
    taken: dict[int, Decimal] = {}
    left = quantity
    for i in order:
        if left == 0:
            break
        take = min(left, lots[i].quantity)
        taken[i] = take
        left -= take
    if left > 0:
        raise ValueError(f"the named lots hold {quantity - left}, less than the {quantity} sold")

    sold_idx = list(taken)
    if method is LotMethod.AVERAGE:
        total_basis = sum((lot.cost_basis for lot in lots), ZERO)
        relieved = share_of(total_basis, quantity, held)
        bases = allocate(relieved, [taken[i] for i in sold_idx])
        kept = [(i, lots[i].quantity - taken.get(i, ZERO)) for i in range(len(lots))]
        kept = [(i, q) for i, q in kept if q > 0]
        kept_bases = allocate(total_basis - relieved, [q for _, q in kept]) if kept else []
        remaining = tuple(
            replace(lots[i], quantity=q, cost_basis=b)
            for (i, q), b in zip(kept, kept_bases, strict=True)
        )
    else:
        bases = [share_of(lots[i].cost_basis, taken[i], lots[i].quantity) for i in sold_idx]
        relieved_by_lot = dict(zip(sold_idx, bases, strict=True))
        remaining = tuple(
            replace(
                lot,
                quantity=lot.quantity - taken[i],
                cost_basis=lot.cost_basis - relieved_by_lot[i],
            )
            if i in taken
            else lot
            for i, lot in enumerate(lots)
            if lot.quantity - taken.get(i, ZERO) > 0
        )

    total_proceeds = quantity * price if proceeds is None else proceeds
    piece_proceeds = allocate(total_proceeds, [taken[i] for i in sold_idx])
    sales = tuple(
        LotSale(
            lot_id=lots[i].lot_id,
            quantity=taken[i],
            basis=basis,
            proceeds=amount,
            acquired=lots[i].acquired,
            sold=as_of,
            term=holding_term(lots[i].acquired, as_of),
        )
        for i, basis, amount in zip(sold_idx, bases, piece_proceeds, strict=True)
    )
    return Relief(sales=sales, remaining=remaining)
