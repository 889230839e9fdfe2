"""A sell's lot instruction relieved fill by fill (rebal.tax.realised.relieve_sale): however the
order is cut into fills and whatever the book holds, every share sold comes off exactly once, no
basis is made or lost, the lots named give their shares in order as far as they hold them, and
what they cannot place comes off the oldest lots with a line saying so."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rebal.domain.account import Holding
from rebal.domain.ids import AccountId, ClientOrderId, Symbol
from rebal.domain.money import Money, Quantity
from rebal.domain.order import LotInstruction, LotPick, Order, Side
from rebal.services.order_terms import Algo
from rebal.services.slicing import slice_order
from rebal.tax.realised import LOT_MATCH, relieve_sale

A, S, OTHER = AccountId("A"), Symbol("VTI"), Symbol("BND")
DAY = date(2024, 1, 2)


def _lot(n: int, quantity: Decimal, basis: Decimal, symbol: Symbol = S) -> Holding:
    return Holding(
        account=A,
        symbol=symbol,
        quantity=Quantity(quantity),
        cost_basis=Money(basis),
        acquired=DAY + timedelta(days=n),
    )


def _pick(n: int, lot: Holding, quantity: Decimal) -> LotPick:
    assert lot.cost_basis is not None and lot.acquired is not None
    return LotPick(
        lot=f"VTI-{n}",
        acquired=lot.acquired,
        lot_quantity=lot.quantity,
        lot_basis=lot.cost_basis,
        quantity=Quantity(quantity),
    )


shares = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("500"), places=2)
cost = st.decimals(min_value=Decimal("1"), max_value=Decimal("400"), places=2)


@st.composite
def sales(draw: st.DrawFn) -> tuple[list[Holding], LotInstruction, list[Decimal]]:
    """A book of 1-5 VTI lots (and a BND lot), an instruction naming some of them for at most
    what each holds, and the instruction's shares cut into 1-4 fills."""
    size = draw(st.integers(1, 5))
    lots = [
        _lot(n, q, (q * draw(cost)).quantize(Decimal("0.01")))
        for n, q in enumerate(draw(st.lists(shares, min_size=size, max_size=size)))
    ]
    named = draw(st.permutations(range(size)).map(lambda p: p[: draw(st.integers(1, size))]))
    picks = []
    for n in named:
        part = draw(st.decimals(min_value=Decimal("0.01"), max_value=lots[n].quantity, places=2))
        picks.append(_pick(n, lots[n], part))
    instruction = LotInstruction(tuple(picks))
    total = instruction.quantity
    cuts = sorted(set(draw(st.lists(st.decimals(Decimal("0.01"), total, places=2), max_size=3))))
    bounds = [Decimal(0), *(c for c in cuts if c < total), total]
    fills = [b - a for a, b in pairwise(bounds) if b > a]
    return [*lots, _lot(9, Decimal(3), Decimal("300.00"), OTHER)], instruction, fills


def _basis(lots: list[Holding]) -> Decimal:
    return sum((h.cost_basis or Decimal(0) for h in lots), Decimal(0))


@given(sales(), st.integers(0, 5), st.decimals(Decimal("0.01"), Decimal("0.99"), places=2))
def test_fill_by_fill_every_share_comes_off_once_and_the_basis_is_kept(
    sale: tuple[list[Holding], LotInstruction, list[Decimal]], shrink: int, keep: Decimal
) -> None:
    book, instruction, fills = sale
    # the book may have changed since the plan (shrink names a VTI lot): that lot is kept in
    # part only, at its cost per share to the cent
    changed = shrink < len(book) - 1
    if changed:
        lot = book[shrink]
        assert lot.cost_basis is not None
        q = max((lot.quantity * keep).quantize(Decimal("0.01")), Decimal("0.01"))
        book[shrink] = _lot(
            shrink, q, (lot.cost_basis * q / lot.quantity).quantize(Decimal("0.01"))
        )
    before = _basis(book)
    lots, placed, parts, said = list(book), Decimal(0), [], []
    for quantity in fills:
        lots, relieved, misses = relieve_sale(lots, A, S, quantity, instruction, placed)
        placed += quantity
        assert sum((p.quantity for p in relieved), Decimal(0)) == quantity
        assert all(p.symbol == S for p in relieved)
        parts += relieved
        said += misses
    assert [h for h in lots if h.symbol == OTHER] == [book[-1]]
    known = [p for p in parts if p.cost_basis is not None]
    assert _basis(lots) + _basis(known) == before
    if not changed:
        # the book is as planned: the lots named, in order, exactly, and nothing to say
        assert said == []
        taken: dict[date | None, Decimal] = {}
        for p in parts:  # in the order relieved; each lot named once, so first seen = order
            taken[p.acquired] = taken.get(p.acquired, Decimal(0)) + p.quantity
        assert list(taken.items()) == [(k.acquired, k.quantity) for k in instruction.lots]
    held = sum((h.quantity for h in book if h.symbol == S), Decimal(0))
    if instruction.quantity <= held:
        assert all(p.cost_basis is not None for p in parts)  # no share without a lot


def test_an_instruction_the_book_still_matches_relieves_exactly_the_lots_named() -> None:
    old, loss, small = (
        _lot(0, Decimal(20), Decimal("3000.00")),
        _lot(1, Decimal(40), Decimal("12000.00")),
        _lot(2, Decimal(10), Decimal("2800.00")),
    )
    instruction = LotInstruction((_pick(2, small, Decimal(10)), _pick(1, loss, Decimal(25))))
    lots, placed, parts = [old, loss, small], Decimal(0), []
    for quantity in (Decimal(7), Decimal(8), Decimal(20)):  # three fills of the 35 shares
        lots, relieved, misses = relieve_sale(lots, A, S, quantity, instruction, placed)
        placed += quantity
        assert misses == []
        parts += [(p.acquired, p.quantity) for p in relieved]
    assert parts == [
        (small.acquired, Decimal(7)),
        (small.acquired, Decimal(3)),
        (loss.acquired, Decimal(5)),
        (loss.acquired, Decimal(20)),
    ]
    assert lots == [old, _lot(1, Decimal(15), Decimal("4500.00"))]


def test_a_lot_reduced_by_earlier_sales_is_still_the_lot_named() -> None:
    lot = _lot(0, Decimal("3"), Decimal("1000.00"))  # 333.333... a share
    pick = _pick(0, lot, Decimal("2.999999"))
    lots = [lot]
    placed = Decimal(0)
    for _ in range(9):  # nine fills, each leaving the basis rounded to the cent
        lots, relieved, misses = relieve_sale(
            lots, A, S, Decimal("0.333333"), LotInstruction((pick,)), placed
        )
        placed += Decimal("0.333333")
        assert misses == [] and relieved[0].acquired == lot.acquired
    assert lots[0].quantity == Decimal("0.000003")


def test_a_same_day_lot_at_another_cost_is_not_the_lot_named() -> None:
    named = _lot(0, Decimal(10), Decimal("2800.00"))
    other = Holding(
        account=A,
        symbol=S,
        quantity=Quantity(Decimal(10)),
        cost_basis=Money(Decimal("2800.00") - LOT_MATCH - Decimal("0.01")),
        acquired=named.acquired,
    )
    oldest = _lot(-5, Decimal(10), Decimal("1000.00"))
    instruction = LotInstruction((_pick(0, named, Decimal(4)),))
    _, relieved, misses = relieve_sale([oldest, other], A, S, Decimal(4), instruction, Decimal(0))
    assert misses == [f"lot VTI-0 (acquired {named.acquired.isoformat()}) is no longer held"]
    assert [(p.acquired, p.quantity) for p in relieved] == [(oldest.acquired, Decimal(4))]


def test_an_order_refuses_an_instruction_that_does_not_add_up() -> None:
    lot = _lot(0, Decimal(10), Decimal("2800.00"))
    instruction = LotInstruction((_pick(0, lot, Decimal(4)),))
    base = {"client_order_id": "c", "account": A, "symbol": S}
    Order(**base, side=Side.SELL, quantity=Quantity(Decimal(4)), lots=instruction)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lot instruction"):
        Order(**base, side=Side.SELL, quantity=Quantity(Decimal(5)), lots=instruction)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lot instruction"):
        Order(**base, side=Side.BUY, quantity=Quantity(Decimal(4)), lots=instruction)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="names a lot twice"):
        LotInstruction((_pick(0, lot, Decimal(4)), _pick(0, lot, Decimal(1))))
    with pytest.raises(ValueError, match="at most the lot's"):
        _pick(0, lot, Decimal(11))


@given(st.integers(1, 7), st.sampled_from(list(Algo)))
def test_a_sliced_sell_s_children_carry_its_instruction_in_order(slices: int, algo: Algo) -> None:
    first, second = (
        _lot(0, Decimal("7.5"), Decimal("900.00")),
        _lot(1, Decimal(5), Decimal("700.00")),
    )
    instruction = LotInstruction((_pick(1, second, Decimal(5)), _pick(0, first, Decimal("7.5"))))
    parent = Order(
        client_order_id=ClientOrderId("R-A-VTI-s"),
        account=A,
        symbol=S,
        side=Side.SELL,
        quantity=Quantity(Decimal("12.5")),
        lots=instruction,
    )
    start = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    children = [s.order for s in slice_order(parent, algo, start, timedelta(hours=1), slices)]
    placed: dict[str, Decimal] = {}
    for child in children:
        assert child.lots is not None and child.lots.quantity == child.quantity
        for pick in child.lots.lots:
            placed[pick.lot] = placed.get(pick.lot, Decimal(0)) + pick.quantity
    assert list(placed.items()) == [(p.lot, p.quantity) for p in instruction.lots]
