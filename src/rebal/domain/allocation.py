"""Allocating a block order's fill back to the accounts that asked for it: pro rata, exact,
and fair.

A block order trades several accounts' orders of one symbol and side as one order
(``rebal run --block-orders``, docs/runs.md). What it filled is split back by
:func:`allocate_block`:

* **Pro rata, exactly.** Each account gets its exact share of the fill (``fill × request /
  total requested``) rounded *down* to the account's unit: a whole share, 10⁻⁹ of a share, or a
  cent. The units left over (fewer than the accounts) go **one each to the largest remainders**
  (the largest-remainder rule), so the parts sum exactly to the fill and each is within one unit
  of its exact share; as the fill is no more than was asked, no account gets more than it asked.
* **Ties by a seeded rotation.** Equal remainders (the common case: equal requests) are ordered
  by a hash of the seed (the block's client order id, which names its run) and the account, not
  by the account's name or place, so which account gets a leftover unit changes from block to
  block and no account is systematically favoured.
* **Shares and money both exact.** The side that was asked is allocated first (shares for a
  sell, money for a notional buy), then the other in proportion to it, by the same rule: the
  parts of the filled quantity and of the filled money each sum exactly to the block's, so the
  block's account ends flat in both. An account whose share of one of them rounds to nothing
  while it gets some of the other (a sliver worth under half a cent) takes one unit of it from
  the account with the most (ties by the rotation), so every account's fill has a price.

Pure: no clock, no I/O; the same inputs give the same allocation in every process.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from hashlib import blake2b
from typing import TypeVar

from rebal.domain.money import CENT, QUANTITY_PLACES, QUANTITY_STEP, amount_of

K = TypeVar("K", bound=Hashable)

#: The most decimal places an account's price is given to: enough for its amount to be exactly
#: its money for any quantity a Decimal holds.
_MAX_PRICE_PLACES = 24


def rotation(seed: str, key: object) -> bytes:
    """Where ``key`` stands in the seeded rotation that orders equal remainders."""
    return blake2b(f"{seed}\x00{key}".encode(), digest_size=8).digest()


def _units(value: Decimal, step: Decimal, what: str) -> int:
    scaled = value / step
    if value < 0 or scaled != scaled.to_integral_value():
        raise ValueError(f"{what} {value} is not a non-negative multiple of {step}")
    return int(scaled)


def pro_rata(
    total: Decimal, weights: Mapping[K, Decimal], step: Decimal, seed: str
) -> dict[K, Decimal]:
    """``total`` split in proportion to ``weights``, in whole multiples of ``step``, summing
    exactly to ``total``: each part is its exact share rounded down, and the steps left over go
    one each to the largest remainders, equal ones ordered by :func:`rotation` of ``seed``.

    When ``weights`` are requests on the ``step`` grid and ``total`` is no more than their sum,
    no part exceeds its request. ``ValueError`` for a negative weight, a total off the grid, or
    a positive total with nothing to split it by."""
    units = _units(total, step, "the total")
    for key, weight in weights.items():
        if weight < 0 or not weight.is_finite():
            raise ValueError(f"the weight of {key} is {weight}, not a non-negative number")
    places = max((-int(w.as_tuple().exponent) for w in weights.values()), default=0)
    scale = Decimal(1).scaleb(max(places, 0))
    whole = {k: int(w * scale) for k, w in weights.items()}
    denominator = sum(whole.values())
    if not denominator:
        if units:
            raise ValueError(f"cannot split {total}: every weight is zero")
        return {k: Decimal(0) * step for k in weights}
    parts = {k: units * w // denominator for k, w in whole.items()}
    left = units - sum(parts.values())
    ranked = sorted(whole, key=lambda k: (-(units * whole[k] % denominator), rotation(seed, k)))
    for key in ranked[:left]:
        parts[key] += 1
    return {k: step * n for k, n in parts.items()}


@dataclass(frozen=True, slots=True)
class Allocated:
    """One account's part of a block's fill: shares, the money they moved (to the cent), and
    the price that makes one the other (``amount_of(quantity, price) == amount``); both zero
    when the account got nothing."""

    quantity: Decimal
    amount: Decimal

    def price(self, average: Decimal) -> Decimal:
        """The account's price: the block's ``average`` price when it gives back the account's
        money exactly (``amount_of(quantity, average) == amount``, most accounts), else its
        money over its shares to 9 places (more only when 9 do not give the money back, for ten
        million shares or more): an account given a leftover cent pays or gets it in its price."""
        if not self.quantity:
            raise ValueError("an allocation of no shares has no price")
        if amount_of(self.quantity, average) == self.amount:
            return average
        exact = self.amount / self.quantity
        for places in range(QUANTITY_PLACES, _MAX_PRICE_PLACES + 1):
            try:
                price = exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
            except InvalidOperation:  # more digits than a Decimal holds
                break
            if amount_of(self.quantity, price) == self.amount:
                return price
        raise ValueError(f"no price gives {self.amount} for {self.quantity} shares")


def allocate_block(
    requests: Mapping[K, Decimal],
    filled_quantity: Decimal,
    filled_amount: Decimal,
    *,
    notional: bool,
    seed: str,
) -> dict[K, Allocated]:
    """Split a block's fill (``filled_quantity`` shares for ``filled_amount`` of money) back to
    the accounts of ``requests``: shares asked (a sell, a buy in shares) or, with ``notional``,
    money asked (a buy by amount). See the module's docstring for the rule.

    Shares are allocated in whole shares when the fill and every request are whole, else to
    10⁻⁹ of a share; money to the cent. ``ValueError`` when the fill is more than was asked."""
    asked = sum(requests.values(), Decimal(0))
    if notional:
        if filled_amount > asked:
            raise ValueError(f"the block filled {filled_amount}, more than the {asked} asked")
        money = pro_rata(filled_amount, requests, CENT, seed)
        shares = pro_rata(filled_quantity, money, QUANTITY_STEP, seed)
        shares = _paired(money, shares, QUANTITY_STEP, seed)
    else:
        if filled_quantity > asked:
            raise ValueError(f"the block filled {filled_quantity}, more than the {asked} asked")
        whole = all(v == v.to_integral_value() for v in (filled_quantity, *requests.values()))
        shares = pro_rata(filled_quantity, requests, Decimal(1) if whole else QUANTITY_STEP, seed)
        money = pro_rata(filled_amount, shares, CENT, seed)
        money = _paired(shares, money, CENT, seed)
    return {k: Allocated(shares[k], money[k]) for k in requests}


def _paired(
    first: Mapping[K, Decimal], second: Mapping[K, Decimal], step: Decimal, seed: str
) -> dict[K, Decimal]:
    """``second`` with one ``step`` moved to each account that got some of ``first`` and none of
    ``second``, from the account with the most of ``second`` (ties by the rotation)."""
    out = dict(second)
    for key in sorted(
        (k for k in first if first[k] and not out[k]), key=lambda k: rotation(seed, k)
    ):
        donor = max(out, key=lambda k: (out[k], rotation(seed, k)))
        if out[donor] <= step:
            raise ValueError(
                "the block filled too little to give every account with shares some money: "
                f"{sum(out.values())} for {sum(1 for k in first if first[k])} accounts"
            )
        out[donor] -= step
        out[key] += step
    return out
