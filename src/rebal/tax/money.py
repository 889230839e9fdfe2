"""Exact money helpers shared by the tax modules: cent rounding, pro-rata allocation, and money
and shares as the tax texts show them (through the one formatter, `rebal.domain.formatting`).

Splitting an amount (a lot's basis, a sale's proceeds, a disallowed loss) over parts must not
create or lose a cent, so every split here rounds each part to the cent and gives the rounding
remainder to the last part: the parts always sum exactly to the total.
"""

from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal

from rebal.domain.formatting import number_text

CENT = Decimal("0.01")
ZERO = Decimal(0)


def to_cents(amount: Decimal) -> Decimal:
    """Round an amount to the cent, half to even (the bankers' rule brokers use)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)


def share_of(total: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    """The cent-rounded share `part / whole` of `total`; the whole of it when `part == whole`."""
    if part == whole:
        return total
    return to_cents(total * part / whole)


def allocate(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split `total` over `weights` pro rata, cent-rounded, the last part taking the remainder.

    The parts sum exactly to `total`. Weights must be non-negative with a positive sum.
    """
    whole = sum(weights, ZERO)
    if whole <= 0:
        raise ValueError("allocate needs weights with a positive sum")
    parts: list[Decimal] = []
    running = ZERO
    for weight in weights[:-1]:
        part = to_cents(total * weight / whole)
        parts.append(part)
        running += part
    parts.append(total - running)
    return parts


def money_shown(amount: Decimal) -> str:
    """Money for a person: cents, thousands separators, never scientific (``1,234.50``)."""
    return number_text(to_cents(amount), 2, grouped=True)


def shares_shown(quantity: Decimal) -> str:
    """Shares for a person: the decimals they need, thousands separators (``1,200``, not
    ``1.2E+3``)."""
    return number_text(quantity, grouped=True)
