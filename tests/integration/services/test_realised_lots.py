"""What a sell fill realised, as applying it to the book records it: every share sold is in
exactly one part, the parts' proceeds sum to the fill's exact amount, the basis relieved and the
basis left sum to the basis held, and a lot without a basis gives a part of unknown result."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from rebal.adapters.memory.clock import SimulatedClock
from rebal.adapters.memory.storage import InMemoryStore
from rebal.domain.account import Account, Holding, Target
from rebal.domain.book import BookSnapshot
from rebal.domain.ids import AccountId, ClientOrderId, FillId, ModelId, Symbol
from rebal.domain.money import Money, Quantity, amount_of
from rebal.domain.order import Fill, Order, Side
from rebal.services.book import import_book
from rebal.services.execution import apply_fills

A1, VTI, BND = AccountId("A1"), Symbol("VTI"), Symbol("BND")
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)

_lot = st.tuples(
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal(500), places=2),  # shares
    st.one_of(  # cost basis
        st.none(), st.decimals(min_value=Decimal(0), max_value=Decimal(90000), places=2)
    ),
    st.dates(min_value=date(2020, 1, 1), max_value=date(2026, 11, 24)),
)


def _vti(quantity: Decimal, basis: Decimal | None, acquired: date) -> Holding:
    """A lot of ``quantity`` VTI in A1 (no basis: never imported)."""
    return Holding(
        account=A1,
        symbol=VTI,
        quantity=Quantity(quantity),
        cost_basis=None if basis is None else Money(basis),
        acquired=acquired,
    )


def _sell(held: list[Holding], quantity: Decimal, price: Decimal) -> InMemoryStore:
    """A store holding ``held`` (and 10 BND) in which a sell of ``quantity`` VTI at ``price``
    was applied to the book."""
    store = InMemoryStore(SimulatedClock(NOW))
    order = Order(
        client_order_id=ClientOrderId("c1"),
        account=A1,
        symbol=VTI,
        side=Side.SELL,
        quantity=Quantity(quantity),
    )
    fill = Fill(
        id=FillId("f1"),
        client_order_id=order.client_order_id,
        account=A1,
        symbol=VTI,
        side=Side.SELL,
        quantity=Quantity(quantity),
        price=price,
        at=NOW,
    )
    bnd = Holding(account=A1, symbol=BND, quantity=Quantity(Decimal(10)))
    book = BookSnapshot(
        models={ModelId("m"): (Target(symbol=VTI, weight=Decimal(1)),)},
        accounts=(Account(id=A1, model=ModelId("m"), cash=Money(Decimal("0.00"))),),
        holdings=(*held, bnd),
        prices=(),
    )
    with store.unit_of_work(actor="t", reason="sell") as uow:
        import_book(uow, book)
        uow.orders.add([order])
        apply_fills(uow, uow.fills.add([fill]))
        uow.commit()
    return store


@given(
    lots=st.lists(_lot, min_size=1, max_size=5),
    fraction=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1.2"), places=2),
    price=st.decimals(min_value=Decimal("0.01"), max_value=Decimal(1000), places=4),
)
def test_the_parts_of_a_sell_account_for_every_share_cent_and_basis(
    lots: list[tuple[Decimal, Decimal | None, date]], fraction: Decimal, price: Decimal
) -> None:
    held = [_vti(q, b, acquired) for q, b, acquired in lots]
    total = sum((h.quantity for h in held), Decimal(0))
    quantity = Quantity((total * fraction).quantize(Decimal("0.01")) or Decimal("0.01"))
    store = _sell(held, quantity, price)
    with store.unit_of_work(actor="t", reason="read") as uow:
        parts = list(uow.realised.since(date(2026, 11, 24)))
        left = [h for h in uow.holdings.of(A1) if h.symbol == VTI]
    assert [p.part for p in parts] == list(range(len(parts)))
    assert sum((p.quantity for p in parts), Decimal(0)) == quantity
    assert sum((p.proceeds for p in parts), Decimal(0)) == amount_of(quantity, price)
    # the lots are relieved oldest first (in the book's order), each part from one lot
    for part, lot in zip(parts, held, strict=False):
        assert part.acquired == lot.acquired and part.quantity <= lot.quantity

    def basis(lots: list[Holding]) -> Decimal:
        return sum((h.cost_basis for h in lots if h.cost_basis is not None), Decimal(0))

    relieved = sum((p.basis for p in parts if p.basis is not None), Decimal(0))
    assert relieved + basis(left) == basis(held)
    for part in parts:
        assert (part.result is None) == (part.basis is None)
        if part.basis is not None:
            assert part.result == part.proceeds - part.basis
    if quantity > total:  # shares no lot held: the last part, without a basis
        assert parts[-1].basis is None and parts[-1].quantity == quantity - total


def test_a_sell_at_a_loss_across_two_lots_records_each_lot_exactly() -> None:
    held = [
        _vti(Decimal(3), Decimal("900.00"), date(2025, 1, 2)),
        _vti(Decimal(3), Decimal("600.00"), date(2026, 6, 1)),
    ]
    store = _sell(held, Decimal(4), Decimal("250.00"))
    with store.unit_of_work(actor="t", reason="read") as uow:
        parts = list(uow.realised.since(date(2026, 11, 24)))
        left = [h for h in uow.holdings.of(A1) if h.symbol == VTI]
    assert [(p.quantity, p.proceeds, p.basis, p.result) for p in parts] == [
        (Decimal(3), Decimal("750.00"), Decimal("900.00"), Decimal("-150.00")),
        (Decimal(1), Decimal("250.00"), Decimal("200.00"), Decimal("50.00")),
    ]
    assert [str(p.term) for p in parts] == ["long", "short"]
    assert [(h.quantity, h.cost_basis) for h in left] == [(Decimal(2), Decimal("400.00"))]
