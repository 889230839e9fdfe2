"""The rounding rules of money and quantities."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rebal.domain.money import amount_of, cents, from_cents, from_micro, micro_floor, to_cents


def test_a_trade_amount_is_rounded_once_half_to_even() -> None:
    assert amount_of(Decimal("1"), Decimal("4544.235")) == Decimal("4544.24")
    assert amount_of(Decimal("1"), Decimal("4544.245")) == Decimal("4544.24")
    assert amount_of(Decimal("3"), Decimal("0.335")) == Decimal("1.00")  # 1.005 -> 1.00


def test_cents_round_trip_and_refuse_fractions_of_a_cent() -> None:
    assert to_cents(from_cents(-12345)) == -12345
    assert to_cents(cents(Decimal("0.1") + Decimal("0.2"))) == 30
    with pytest.raises(ValueError, match="whole number of cents"):
        to_cents(Decimal("0.001"))


@given(st.decimals(min_value=0, max_value=10**12, places=9, allow_nan=False))
def test_the_core_never_sees_more_shares_than_are_held(quantity: Decimal) -> None:
    micro = micro_floor(quantity)
    assert from_micro(micro) <= quantity < from_micro(micro + 1)
