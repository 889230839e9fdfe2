"""Each injected fault leaves a defined state: what the broker did, what the caller was told, and
that asking the broker (never sending again) finds the truth."""

from __future__ import annotations

from datetime import timedelta

import pytest
from simmarket import ACCOUNT, SimFactory, d, ledger_rows

from rebal.adapters.brokers.simulated import tables as t
from rebal.domain.ids import AccountId, Symbol
from rebal.domain.order import OrderState
from rebal.ports.broker import BrokerUnavailable, DuplicateOrder


def test_a_timeout_does_the_order_moves_the_clock_and_loses_the_answer(
    make_sim: SimFactory,
) -> None:
    sim = make_sim(faults={"timeout": {"probability": 1.0, "at_most": 1, "seconds": 30}})
    sim.open("1000.00", VTI="10")
    order = sim.order("sell", "VTI", quantity="2")
    before = sim.clock.now()
    with pytest.raises(BrokerUnavailable, match="no answer within 30 s"):
        sim.broker.submit(order)
    assert sim.clock.now() - before == timedelta(seconds=30)
    found = sim.broker.order(order.client_order_id)
    assert found is not None and found.state is OrderState.FILLED
    with pytest.raises(DuplicateOrder) as again:
        sim.broker.submit(order)
    assert again.value.existing.broker_order_id == found.broker_order_id
    assert ledger_rows(sim, t.requests, "outcome") == [("filled",), ("duplicate",)]
    assert ledger_rows(sim, t.faults, "kind", "operation") == [("timeout", "submit")]
    assert sim.broker.positions(ACCOUNT) == {Symbol("VTI"): 8}


def test_a_disconnect_before_the_request_reached_the_broker_leaves_nothing(
    make_sim: SimFactory,
) -> None:
    sim = make_sim(faults={"disconnect": {"probability": 1.0, "reached": 0.0, "at_most": 1}})
    sim.open("1000.00", VTI="10")
    order = sim.order("sell", "VTI", quantity="2")
    with pytest.raises(BrokerUnavailable, match="connection lost"):
        sim.broker.submit(order)
    assert sim.broker.order(order.client_order_id) is None
    assert ledger_rows(sim, t.requests) == []
    assert sim.broker.submit(order).state is OrderState.FILLED  # a resend is the first arrival
    (fault,) = ledger_rows(sim, t.faults, "kind", "detail")
    assert fault == ("disconnect", "disconnect before reaching the broker")


def test_a_disconnect_after_the_request_reached_the_broker_leaves_the_order(
    make_sim: SimFactory,
) -> None:
    sim = make_sim(faults={"disconnect": {"probability": 1.0, "reached": 1.0, "at_most": 1}})
    sim.open("1000.00", VTI="10")
    order = sim.order("sell", "VTI", quantity="2")
    with pytest.raises(BrokerUnavailable, match="connection lost"):
        sim.broker.submit(order)
    found = sim.broker.order(order.client_order_id)
    assert found is not None and found.state is OrderState.FILLED
    with pytest.raises(DuplicateOrder):
        sim.broker.submit(order)
    assert len(sim.broker.orders(ACCOUNT)) == 1


def test_a_disconnect_draws_both_cases_from_the_seed(make_sim: SimFactory) -> None:
    sim = make_sim(seed=7, faults={"disconnect": {"probability": 1.0}})
    sim.open("100000.00")
    reached = []
    for _ in range(40):
        order = sim.order("buy", "BND", notional="1.00")
        with pytest.raises(BrokerUnavailable):
            sim.broker.submit(order)
        reached.append(sim.broker.order(order.client_order_id) is not None)
    assert 5 < sum(reached) < 35


def test_a_fault_on_a_question_changes_nothing_and_passes(make_sim: SimFactory) -> None:
    faults = {"disconnect": {"probability": 1.0, "operations": ["order", "cash"], "at_most": 2}}
    sim = make_sim(faults=faults)
    sim.open("1000.00", VTI="10")
    placed = sim.broker.submit(sim.order("sell", "VTI", quantity="1"))
    with pytest.raises(BrokerUnavailable):
        sim.broker.order(placed.client_order_id)
    with pytest.raises(BrokerUnavailable):
        sim.broker.cash(ACCOUNT)
    assert sim.broker.cash(ACCOUNT) == d("1250.00")  # at most twice: the third asks get through
    assert sim.broker.order(placed.client_order_id) == placed


def test_a_timed_out_cancel_is_done(make_sim: SimFactory) -> None:
    faults = {"timeout": {"probability": 1.0, "operations": ["cancel"], "seconds": 5}}
    sim = make_sim(faults=faults)
    sim.open("1000.00")
    placed = sim.broker.submit(sim.order("buy", "VTI", quantity="1", limit="100.00"))
    with pytest.raises(BrokerUnavailable):
        sim.broker.cancel(placed.client_order_id)
    found = sim.broker.order(placed.client_order_id)
    assert found is not None and found.state is OrderState.CANCELED


def test_an_order_whose_acknowledgement_is_lost_is_reported_submitted_until_it_fills(
    make_sim: SimFactory,
) -> None:
    sim = make_sim(latency_seconds=10, faults={"ack_lost": {"probability": 1.0}})
    sim.open("1000.00", VTI="10")
    placed = sim.broker.submit(sim.order("sell", "VTI", quantity="1"))
    assert placed.state is OrderState.SUBMITTED
    sim.wait(5)
    waiting = sim.broker.order(placed.client_order_id)
    assert waiting is not None and waiting.state is OrderState.SUBMITTED
    assert [o.state for o in sim.broker.orders(ACCOUNT)] == [OrderState.SUBMITTED]
    sim.wait(5)
    filled = sim.broker.order(placed.client_order_id)
    assert filled is not None and filled.state is OrderState.FILLED  # submitted -> filled


def test_a_duplicate_fill_report_lists_a_fill_twice_and_moves_cash_once(
    make_sim: SimFactory,
) -> None:
    sim = make_sim(faults={"duplicate_fill_report": {"probability": 1.0}})
    sim.open("1000.00", VTI="10")
    sold = sim.broker.submit(sim.order("sell", "VTI", quantity="2"))
    fills = sim.broker.fills(ACCOUNT)
    assert len(fills) == 2 and fills[0] == fills[1]
    assert sim.broker.cash(ACCOUNT) == d("1000.00") + sold.filled_notional == d("1500.00")
    assert sim.broker.positions(ACCOUNT) == {Symbol("VTI"): 8}


def test_fills_reported_out_of_order_are_listed_latest_first(make_sim: SimFactory) -> None:
    sim = make_sim(
        partial_fills={"interval_seconds": 60, "max_parts": 4},
        faults={"out_of_order_fills": {"probability": 1.0}},
    )
    sim.open("0.00", VTI="100")
    sim.broker.submit(sim.order("sell", "VTI", quantity="40"))
    sim.wait(600)
    fills = sim.broker.fills(ACCOUNT)
    assert len(fills) >= 2  # the fault splits the order into parts to misreport
    assert [f.at for f in fills] == sorted((f.at for f in fills), reverse=True)
    assert sum(f.quantity for f in fills) == 40


def test_at_most_bounds_how_often_a_fault_is_injected(make_sim: SimFactory) -> None:
    sim = make_sim(faults={"timeout": {"probability": 1.0, "at_most": 2, "seconds": 1}})
    sim.open("1000.00")
    outcomes = []
    for _ in range(4):
        try:
            sim.broker.submit(sim.order("buy", "BND", notional="1.00"))
            outcomes.append("answered")
        except BrokerUnavailable:
            outcomes.append("timeout")
    assert outcomes == ["timeout", "timeout", "answered", "answered"]
    assert len(sim.broker.orders(ACCOUNT)) == 4


def test_the_fault_count_survives_a_restart(make_sim: SimFactory) -> None:
    faults = {"timeout": {"probability": 1.0, "at_most": 1, "seconds": 1}}
    first = make_sim(faults=faults)
    first.open("1000.00")
    with pytest.raises(BrokerUnavailable):
        first.broker.submit(first.order("buy", "BND", notional="1.00"))
    again = make_sim(faults=faults)  # a new process on the same ledger
    assert again.broker.submit(again.order("buy", "BND", notional="2.00", cid="x")).state is (
        OrderState.FILLED
    )
    assert again.broker.accounts() == [AccountId("ACC-1")]
