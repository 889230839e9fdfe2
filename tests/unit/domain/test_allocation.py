"""The allocation of a block's fill (rebal.domain.allocation): exact, never over a request, within
one unit of the exact share, and with leftovers spread over the accounts, not given by name."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebal.domain.allocation import Allocated, allocate_block, pro_rata
from rebal.domain.money import CENT, QUANTITY_STEP, amount_of

STEPS = (Decimal(1), QUANTITY_STEP, CENT)


@st.composite
def split_case(draw: st.DrawFn) -> tuple[Decimal, dict[str, Decimal], Decimal]:
    step = draw(st.sampled_from(STEPS))
    units = draw(st.lists(st.integers(0, 10**12), min_size=1, max_size=12))
    if not any(units):
        units[0] = 1
    requests = {f"A{k}": step * n for k, n in enumerate(units)}
    total = step * draw(st.integers(0, sum(units)))
    return total, requests, step


@given(split_case(), st.text(max_size=8))
def test_parts_sum_exactly_never_exceed_and_stay_within_a_unit(
    case: tuple[Decimal, dict[str, Decimal], Decimal], seed: str
) -> None:
    total, requests, step = case
    parts = pro_rata(total, requests, step, seed)
    assert sum(parts.values()) == total
    asked = sum(requests.values())
    for key, part in parts.items():
        assert part % step == 0
        assert 0 <= part <= requests[key]
        exact = total * requests[key] / asked
        assert abs(part - exact) < step


@given(split_case())
def test_the_same_inputs_give_the_same_parts(
    case: tuple[Decimal, dict[str, Decimal], Decimal],
) -> None:
    total, requests, step = case
    assert pro_rata(total, requests, step, "R1") == pro_rata(
        total, dict(reversed(requests.items())), step, "R1"
    )


def test_leftovers_spread_over_the_accounts_across_blocks() -> None:
    """Three equal requests and one share over: across many blocks (seeds) each account gets
    the leftover about a third of the time, whatever its name or place."""
    requests = {"A1": Decimal(1), "A2": Decimal(1), "A3": Decimal(1)}
    won = Counter(
        next(
            k
            for k, v in pro_rata(Decimal(1), requests, Decimal(1), f"R{n}-BLOCK-VTI-s").items()
            if v
        )
        for n in range(3000)
    )
    assert set(won) == set(requests)
    assert all(900 < n < 1100 for n in won.values()), won


@settings(max_examples=30)
@given(st.integers(2, 6), st.integers(1, 1000))
def test_leftovers_are_not_given_by_account_order(accounts: int, size: int) -> None:
    """Equal requests and one unit short of them all: every account but one gets a leftover
    unit, and across blocks each account is the one left without, whatever its name."""
    requests = {f"A{k}": Decimal(size) for k in range(accounts)}
    short = Counter(
        min(parts, key=lambda k: parts[k])
        for parts in (
            pro_rata(Decimal(size * accounts - 1), requests, Decimal(1), f"R{n}")
            for n in range(40 * accounts)
        )
    )
    assert set(short) == set(requests)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="not a non-negative multiple"):
        pro_rata(Decimal("1.5"), {"A": Decimal(2)}, Decimal(1), "s")
    with pytest.raises(ValueError, match="every weight is zero"):
        pro_rata(Decimal(1), {"A": Decimal(0)}, Decimal(1), "s")
    with pytest.raises(ValueError, match="more than"):
        allocate_block({"A": Decimal(1)}, Decimal(2), Decimal("10.00"), notional=False, seed="s")


@st.composite
def block_case(draw: st.DrawFn) -> tuple[dict[str, Decimal], Decimal, Decimal, bool]:
    notional = draw(st.booleans())
    price = Decimal(draw(st.integers(100, 100_000))) / 100
    n = draw(st.integers(1, 8))
    if notional:
        requests = {f"A{k}": CENT * draw(st.integers(100, 10**7)) for k in range(n)}
        amount = CENT * draw(st.integers(1, int(sum(requests.values()) / CENT)))
        quantity = (amount / price).quantize(QUANTITY_STEP, rounding="ROUND_FLOOR")
        amount = amount_of(quantity, price)
    else:
        step = draw(st.sampled_from((Decimal(1), QUANTITY_STEP)))
        requests = {
            f"A{k}": step * draw(st.integers(1, 10**4 if step == 1 else 10**13)) for k in range(n)
        }
        quantity = step * draw(st.integers(1, int(sum(requests.values()) / step)))
        amount = amount_of(quantity, price)
    return requests, quantity, amount, notional


@given(block_case(), st.text(max_size=8))
def test_a_block_allocates_its_shares_and_money_exactly(
    case: tuple[dict[str, Decimal], Decimal, Decimal, bool], seed: str
) -> None:
    requests, quantity, amount, notional = case
    if amount == 0 or quantity == 0:
        return
    try:
        parts = allocate_block(requests, quantity, amount, notional=notional, seed=seed)
    except ValueError as exc:  # too little filled to pay every account with shares a cent
        assert "too little" in str(exc)
        return
    assert sum(p.quantity for p in parts.values()) == quantity
    assert sum(p.amount for p in parts.values()) == amount
    for key, part in parts.items():
        assert part.amount % CENT == 0 and part.quantity % QUANTITY_STEP == 0
        if notional:
            assert part.amount <= requests[key]
        else:
            assert part.quantity <= requests[key]
        assert bool(part.quantity) == bool(part.amount)
        if part.quantity:
            assert amount_of(part.quantity, part.price(amount / quantity)) == part.amount


def test_an_example_with_numbers() -> None:
    """docs/runs.md's example: three accounts sell 10 VTI each in one block, which fills 20
    shares for 5,002.50 (an average of 250.125) before the close."""
    requests = {"ACC-1": Decimal(10), "ACC-2": Decimal(10), "ACC-3": Decimal(10)}
    parts = allocate_block(
        requests, Decimal(20), Decimal("5002.50"), notional=False, seed="R1-BLOCK-VTI-s"
    )
    assert parts == {
        "ACC-1": Allocated(Decimal(7), Decimal("1750.88")),
        "ACC-2": Allocated(Decimal(6), Decimal("1500.75")),
        "ACC-3": Allocated(Decimal(7), Decimal("1750.87")),
    }
    average = Decimal("250.125")
    assert [parts[k].price(average) for k in requests] == [
        average,
        average,
        Decimal("250.124285714"),
    ]


@given(
    st.integers(1, 10**18).map(lambda n: Decimal(n).scaleb(-9)),
    st.integers(1, 10**8).map(lambda n: Decimal(n).scaleb(-2)),
    st.sampled_from((-1, 0, 1)),
)
def test_every_part_has_a_price_that_gives_back_its_money(
    quantity: Decimal, average: Decimal, leftover: int
) -> None:
    """An account's part of a block priced at ``average`` (a cent to a million), with a cent
    more or less (a leftover): its price gives back its money, in 9 places or, for ten million
    shares and more, as many as it takes."""
    amount = amount_of(quantity, average) + leftover * CENT
    if amount <= 0:
        return
    price = Allocated(quantity, amount).price(average)
    assert price > 0 and amount_of(quantity, price) == amount
