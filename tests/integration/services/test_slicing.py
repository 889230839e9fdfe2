"""TWAP/VWAP slicing as a pure function (children sum exactly to the parent, none negative,
deterministic ids, each sent within the window) and the order terms' limit prices."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rebal.domain.ids import AccountId, ClientOrderId, RunId, Symbol
from rebal.domain.money import Money, Quantity
from rebal.domain.order import Order, OrderState, OrderType, Side
from rebal.services.order_terms import Algo, OrderTerms
from rebal.services.slicing import VOLUME_PROFILE, expected_volume, rolled_up, slice_order

_START = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)  # 09:30 in New York


def _parent(quantity: Decimal | None = None, notional: Decimal | None = None) -> Order:
    return Order(
        client_order_id=ClientOrderId("R1-A1-VTI-s"),
        account=AccountId("A1"),
        symbol=Symbol("VTI"),
        side=Side.SELL if quantity is not None else Side.BUY,
        quantity=None if quantity is None else Quantity(quantity),
        notional=None if notional is None else Money(notional),
        run=RunId("R1"),
    )


sizes = st.one_of(
    st.decimals(Decimal("0.000000001"), Decimal("100000"), places=9).map(
        lambda q: _parent(quantity=q)
    ),
    st.decimals(Decimal("0.01"), Decimal("1000000"), places=2).map(lambda n: _parent(notional=n)),
)
starts = st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31), timezones=st.just(UTC))


@given(
    parent=sizes,
    algo=st.sampled_from(Algo),
    start=starts,
    minutes=st.integers(1, 1440),
    slices=st.integers(1, 60),
    whole=st.booleans(),
)
def test_children_sum_to_the_parent_within_the_window(
    parent: Order, algo: Algo, start: datetime, minutes: int, slices: int, whole: bool
) -> None:
    window = timedelta(minutes=minutes)
    children = slice_order(parent, algo, start, window, slices, whole_shares=whole)
    size = parent.quantity if parent.quantity is not None else parent.notional
    sizes_ = [
        c.order.quantity if parent.quantity is not None else c.order.notional for c in children
    ]
    assert sum(s for s in sizes_ if s is not None) == size  # exactly
    assert all(s is not None and s > 0 for s in sizes_)
    assert all(start <= c.at < start + window for c in children)
    assert [c.at for c in children] == sorted(c.at for c in children)
    # ids: the parent's and the slice index, the same every time
    again = slice_order(parent, algo, start, window, slices, whole_shares=whole)
    assert again == children
    ids = [c.order.client_order_id for c in children]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith(f"{parent.client_order_id}-") for i in ids)
    assert {c.order.parent for c in children} == {parent.client_order_id}
    assert all(c.order.state is OrderState.NEW for c in children)


@given(
    notional=st.decimals(Decimal("0.01"), Decimal("1000000"), places=2),
    slices=st.integers(1, 60),
)
def test_twap_slices_are_equal_to_the_cent_the_remainder_last(
    notional: Decimal, slices: int
) -> None:
    children = slice_order(
        _parent(notional=notional), Algo.TWAP, _START, timedelta(hours=1), slices
    )
    amounts = [c.order.notional for c in children]
    cents = int(notional * 100)
    if cents >= slices:  # else the early slices are empty and not sent
        assert len(amounts) == slices
        assert set(amounts[:-1]) <= {Decimal(cents // slices) / 100}
        assert amounts[-1] == Decimal(cents // slices + cents % slices) / 100


def test_vwap_follows_the_u_shaped_profile() -> None:
    assert sum(p for _, p in VOLUME_PROFILE) == 100
    open_, midday, close = (
        expected_volume(_START + timedelta(minutes=m), _START + timedelta(minutes=m + 30))
        for m in (0, 180, 360)
    )
    assert open_ > midday < close
    day = slice_order(
        _parent(quantity=Decimal(1000)), Algo.VWAP, _START, timedelta(hours=6, minutes=30), 13
    )
    assert [c.order.quantity for c in day][:2] == [Decimal(120), Decimal(90)]
    assert day[-1].order.quantity == Decimal(135)
    # outside regular hours there is no expected volume: equal slices
    night = slice_order(
        _parent(quantity=Decimal(10)), Algo.VWAP, _START - timedelta(hours=4), timedelta(hours=2), 2
    )
    assert [c.order.quantity for c in night] == [Decimal(5), Decimal(5)]


def test_whole_share_slices_are_whole() -> None:
    children = slice_order(
        _parent(quantity=Decimal(10)), Algo.TWAP, _START, timedelta(hours=1), 3, whole_shares=True
    )
    assert [c.order.quantity for c in children] == [Decimal(3), Decimal(3), Decimal(4)]


def test_a_parent_follows_its_children() -> None:
    parent = _parent(quantity=Decimal(10)).advance(OrderState.SUBMITTED, submitted_at=_START)
    kids = [c.order for c in slice_order(parent, Algo.TWAP, _START, timedelta(hours=1), 2)]
    first = (
        kids[0]
        .advance(OrderState.SUBMITTED)
        .advance(OrderState.FILLED, filled_quantity=Decimal(5), filled_notional=Decimal("1250.00"))
    )
    half = rolled_up(parent, [first, kids[1]])
    assert (half.state, half.filled_quantity) == (OrderState.PARTIALLY_FILLED, 5)
    expired = kids[1].advance(OrderState.SUBMITTED).advance(OrderState.EXPIRED)
    ended = rolled_up(half, [first, expired])
    assert ended.state is OrderState.CANCELED and ended.filled_notional == Decimal("1250.00")
    assert ended.reason.endswith("slices ended 1 expired, 1 filled")


@pytest.mark.parametrize(
    ("side", "quote", "bps", "limit"),
    [
        (Side.SELL, "250.00", "33", "249.18"),  # 249.175 up: the seller's favour
        (Side.BUY, "72.50", "33", "72.73"),  # 72.73925 down: the buyer's favour
        (Side.SELL, "250.00", "-100", "252.50"),
        (Side.BUY, "10.005", "0", "10.00"),
    ],
)
def test_limit_prices_round_to_the_cent_in_the_side_s_favour(
    side: Side, quote: str, bps: str, limit: str
) -> None:
    terms = OrderTerms(type=OrderType.LIMIT, limit_offset_bps=Decimal(bps))
    assert terms.limit_price(side, Decimal(quote)) == Decimal(limit)
    assert OrderTerms().limit_price(side, Decimal(quote)) is None


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        ({"extended_hours": True}, "--extended-hours needs --order-type limit"),
        ({"limit_offset_bps": Decimal(5)}, "--limit-offset-bps needs --order-type limit"),
        ({"type": OrderType.LIMIT, "limit_offset_bps": Decimal(10000)}, "between -10000"),
        ({"algo": Algo.TWAP, "algo_slices": 3}, "--algo-window must be 1 to 1440"),
        ({"algo": Algo.TWAP, "algo_window_minutes": 5}, "--algo-slices must be 1 to 1000"),
        ({"algo_slices": 3}, "need --algo"),
    ],
)
def test_bad_terms_are_refused_naming_the_option(terms: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OrderTerms(**terms)  # type: ignore[arg-type]


def test_terms_round_trip_through_the_run_s_config() -> None:
    terms = OrderTerms(
        type=OrderType.LIMIT,
        limit_offset_bps=Decimal("12.5"),
        extended_hours=True,
        algo=Algo.VWAP,
        algo_window_minutes=45,
        algo_slices=9,
    )
    assert OrderTerms.of_config(json.dumps(terms.options())) == terms
    assert OrderTerms.of_config("{}") == OrderTerms()
