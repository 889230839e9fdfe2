"""An order moves only along its transition table; a run likewise."""

from decimal import Decimal

import pytest

from rebal.domain.ids import AccountId, ClientOrderId, RunId, Symbol
from rebal.domain.money import Money, Quantity
from rebal.domain.order import TRANSITIONS, IllegalTransition, Order, OrderState, Side
from rebal.domain.run import TRANSITIONS as RUN_TRANSITIONS
from rebal.domain.run import IllegalRunTransition, RunState, check_transition


def _sell() -> Order:
    return Order(
        client_order_id=ClientOrderId("r1-0"),
        account=AccountId("A"),
        symbol=Symbol("VTI"),
        side=Side.SELL,
        quantity=Quantity(Decimal("1.5")),
    )


@pytest.mark.parametrize("start", list(OrderState))
@pytest.mark.parametrize("end", list(OrderState))
def test_every_order_move_follows_the_table(start: OrderState, end: OrderState) -> None:
    order = _sell()
    if start is not OrderState.NEW:
        object.__setattr__(order, "state", start)
    allowed = end in TRANSITIONS[start] or (start is end is OrderState.PARTIALLY_FILLED)
    if allowed:
        assert order.advance(end).state is end
    else:
        with pytest.raises(IllegalTransition):
            order.advance(end)


def test_a_filled_order_can_never_be_sent_again() -> None:
    filled = _sell().advance(OrderState.SUBMITTED).advance(OrderState.FILLED)
    assert filled.state.terminal
    with pytest.raises(IllegalTransition):
        filled.advance(OrderState.SUBMITTED)


def test_an_order_has_a_quantity_or_a_notional_never_both() -> None:
    with pytest.raises(ValueError, match="not both"):
        Order(
            client_order_id=ClientOrderId("x"),
            account=AccountId("A"),
            symbol=Symbol("VTI"),
            side=Side.BUY,
            quantity=Quantity(Decimal(1)),
            notional=Money(Decimal("10.00")),
        )
    with pytest.raises(ValueError, match="positive"):
        Order(
            client_order_id=ClientOrderId("x"),
            account=AccountId("A"),
            symbol=Symbol("VTI"),
            side=Side.BUY,
            notional=Money(Decimal("-1.00")),
        )


@pytest.mark.parametrize("start", list(RunState))
@pytest.mark.parametrize("end", list(RunState))
def test_every_run_move_follows_the_table(start: RunState, end: RunState) -> None:
    if end in RUN_TRANSITIONS[start]:
        check_transition(RunId("r"), start, end)
    else:
        with pytest.raises(IllegalRunTransition):
            check_transition(RunId("r"), start, end)


def test_a_run_ends_only_from_in_progress_and_never_restarts() -> None:
    ends = {s for s in RunState if s.terminal}
    assert RUN_TRANSITIONS[RunState.QUEUED] & ends == {RunState.CANCELED, RunState.ERROR}
    assert all(not RUN_TRANSITIONS[s] for s in ends)
