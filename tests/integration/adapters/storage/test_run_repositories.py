"""Runs, orders and fills in the store: a run key is one run, a client order id one order, a
fill reported twice one fill, and states move only along their tables; on every
implementation."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest

from rebal.adapters.memory.clock import SimulatedClock
from rebal.domain.account import Account, Target
from rebal.domain.audit import AuditAction, Entity
from rebal.domain.ids import (
    AccountId,
    BrokerOrderId,
    ClientOrderId,
    FillId,
    ModelId,
    RunId,
    Symbol,
)
from rebal.domain.money import Money, Quantity
from rebal.domain.order import (
    Fill,
    IllegalTransition,
    Order,
    OrderState,
    OrderType,
    Side,
    TimeInForce,
)
from rebal.domain.run import (
    IllegalRunTransition,
    Run,
    RunEvent,
    RunKey,
    RunState,
    RunType,
    ScopeKind,
)
from rebal.ports.storage import Conflict, NotFound, Store
from rebal.tax.realised import RealisedLot

D = Decimal
KEY = RunKey(ScopeKind.MODEL, "growth", date(2026, 11, 20), RunType.REBALANCE, 3)


def _run(clock: SimulatedClock, run_id: str = "r1", key: RunKey = KEY) -> Run:
    return Run(
        id=RunId(run_id),
        key=key,
        state=RunState.QUEUED,
        created_at=clock.now(),
        updated_at=clock.now(),
    )


def _sell(number: int = 0, **changes: object) -> Order:
    fields: dict[str, object] = {
        "client_order_id": ClientOrderId(f"r1-{number}"),
        "account": AccountId("A1"),
        "symbol": Symbol("VTI"),
        "side": Side.SELL,
        "quantity": Quantity(D("1.123456789")),
        "run": RunId("r1"),
    }
    return Order(**(fields | changes))  # type: ignore[arg-type]


@pytest.fixture
def book(store: Store, clock: SimulatedClock) -> Store:
    """The default firm with account A1 and run r1 (queued)."""
    with store.unit_of_work(actor="t", reason="book") as uow:
        uow.models.set_targets(ModelId("growth"), (Target(symbol=Symbol("VTI"), weight=D(1)),))
        uow.accounts.save(
            [Account(id=AccountId("A1"), model=ModelId("growth"), cash=Money(D("100.00")))]
        )
        uow.runs.start(_run(clock), "asked for")
        uow.commit()
    return store


def test_starting_the_same_run_again_returns_the_existing_one(
    book: Store, clock: SimulatedClock
) -> None:
    clock.advance(timedelta(minutes=1))
    with book.unit_of_work(actor="t", reason="r") as uow:
        again, created = uow.runs.start(_run(clock, "r2"), "asked again")
        assert not created and again.id == "r1" and again.created_at < clock.now()
        other = RunKey(ScopeKind.ACCOUNT, "A1", date(2026, 11, 20), RunType.INVEST_CASH, 3)
        fresh, created = uow.runs.start(_run(clock, "r3", other), "deposit")
        assert created and fresh == _run(clock, "r3", other)
        assert uow.runs.find(other) == fresh and uow.runs.get(RunId("r3")) == fresh
        assert (
            uow.runs.find(RunKey(ScopeKind.BOOK, "", date(2026, 1, 1), RunType.HARVEST, 0)) is None
        )
        with pytest.raises(Conflict):  # a taken id under another key
            uow.runs.start(
                _run(clock, "r1", RunKey(ScopeKind.BOOK, "", date(2026, 1, 1), RunType.HARVEST, 0)),
                "x",
            )
    with book.unit_of_work(actor="t", reason="r") as uow:
        assert uow.runs.events(RunId("r1")) == [
            RunEvent(
                run=RunId("r1"),
                at=clock.now() - timedelta(minutes=1),
                state=RunState.QUEUED,
                reason="asked for",
            )
        ]


def test_a_run_moves_only_along_its_table_and_every_move_is_an_event(
    book: Store, clock: SimulatedClock
) -> None:
    t0 = clock.now()
    with book.unit_of_work(actor="runner", reason="run r1") as uow:
        started = uow.runs.transition(
            RunId("r1"), RunState.IN_PROGRESS, t0 + timedelta(1), "started"
        )
        uow.runs.note(RunId("r1"), t0 + timedelta(2), "order r1-0 delayed")
        with pytest.raises(IllegalRunTransition):
            uow.runs.transition(RunId("r1"), RunState.QUEUED, t0, "back?")
        done = uow.runs.transition(
            RunId("r1"),
            RunState.COMPLETED_ADJUSTED,
            t0 + timedelta(3),
            "1 order dropped: below the minimum trade",
        )
        uow.commit()
    assert started.state is RunState.IN_PROGRESS
    with book.unit_of_work(actor="t", reason="r") as uow:
        assert uow.runs.get(RunId("r1"), for_update=True) == done
        assert done.reason == "1 order dropped: below the minimum trade"
        assert done.updated_at == t0 + timedelta(3)
        assert [(e.state, e.reason) for e in uow.runs.events(RunId("r1"))] == [
            (RunState.QUEUED, "asked for"),
            (RunState.IN_PROGRESS, "started"),
            (RunState.IN_PROGRESS, "order r1-0 delayed"),
            (RunState.COMPLETED_ADJUSTED, "1 order dropped: below the minimum trade"),
        ]
        assert uow.runs.list(RunState.COMPLETED_ADJUSTED) == [done]
        assert uow.runs.list(RunState.QUEUED) == []
        with pytest.raises(NotFound):
            uow.runs.transition(RunId("nope"), RunState.CANCELED, t0, "x")


def test_an_order_round_trips_exactly(book: Store, clock: SimulatedClock) -> None:
    orders = [
        _sell(0),
        Order(
            client_order_id=ClientOrderId("r1-1"),
            account=AccountId("A1"),
            symbol=Symbol("BND"),
            side=Side.BUY,
            notional=Money(D("250.10")),
            type=OrderType.LIMIT,
            limit_price=D("73.4125"),
            time_in_force=TimeInForce.GTC,
            extended_hours=True,
            run=RunId("r1"),
            reason="buy after the sells settle",
        ),
        _sell(2, run=None, parent=ClientOrderId("r1-0"), quantity=Quantity(D("0.5"))),
    ]
    with book.unit_of_work(actor="t", reason="r") as uow:
        uow.orders.add(orders)
        uow.commit()
    with book.unit_of_work(actor="t", reason="r") as uow:
        assert [uow.orders.get(o.client_order_id) for o in orders] == orders
        assert uow.orders.for_run(RunId("r1")) == orders[:2]
        assert uow.orders.working() == orders
        assert uow.orders.get(ClientOrderId("r1-9")) is None


def test_a_client_order_id_is_stored_once(book: Store) -> None:
    with book.unit_of_work(actor="t", reason="r") as uow:
        uow.orders.add([_sell(0)])
        with pytest.raises(Conflict):
            uow.orders.add([_sell(0, quantity=Quantity(D(2)))])
    with book.unit_of_work(actor="t", reason="r") as uow, pytest.raises(Conflict):
        uow.orders.add([_sell(5), _sell(5)])


def test_an_order_names_a_stored_account_and_run(book: Store) -> None:
    with book.unit_of_work(actor="t", reason="r") as uow, pytest.raises(NotFound):
        uow.orders.add([_sell(0, account=AccountId("ghost"))])
    with book.unit_of_work(actor="t", reason="r") as uow, pytest.raises(NotFound):
        uow.orders.add([_sell(0, run=RunId("ghost"))])


def test_an_order_moves_along_its_table_and_keeps_what_names_it(
    book: Store, clock: SimulatedClock
) -> None:
    sent_at = clock.now() + timedelta(seconds=3)
    with book.unit_of_work(actor="t", reason="r") as uow:
        uow.orders.add([_sell(0), _sell(1)])
        sent = _sell(0).advance(
            OrderState.SUBMITTED, submitted_at=sent_at, broker_order_id=BrokerOrderId("b-77")
        )
        part = sent.advance(
            OrderState.PARTIALLY_FILLED,
            filled_quantity=Quantity(D("0.5")),
            filled_notional=Money(D("167.435")),
        )
        uow.orders.update([sent])
        uow.orders.update([part, _sell(1)])  # an unchanged order is no change
        with pytest.raises(IllegalTransition):
            uow.orders.update([_sell(1, state=OrderState.FILLED)])
        uow.commit()
    with book.unit_of_work(actor="t", reason="r") as uow:
        stored = uow.orders.get(ClientOrderId("r1-0"), for_update=True)
        assert stored == part and stored.filled_avg_price == D("334.87")  # type: ignore[union-attr]
        assert stored.submitted_at == sent_at  # type: ignore[union-attr]
        with pytest.raises(ValueError, match="symbol cannot change"):
            uow.orders.update([part.advance(OrderState.FILLED, symbol=Symbol("BND"))])
        with pytest.raises(NotFound):
            uow.orders.update([_sell(7)])
        updates = [e.action for e in uow.audit.entries(Entity.ORDER, "r1-0")]
        assert updates == [AuditAction.CREATE, AuditAction.UPDATE, AuditAction.UPDATE]
        assert [o.client_order_id for o in uow.orders.working()] == ["r1-0", "r1-1"]


def test_a_fill_reported_twice_is_recorded_once(book: Store, clock: SimulatedClock) -> None:
    fill = Fill(
        id=FillId("f1"),
        client_order_id=ClientOrderId("r1-0"),
        account=AccountId("A1"),
        symbol=Symbol("VTI"),
        side=Side.SELL,
        quantity=Quantity(D("0.123456789")),
        price=D("334.8712"),
        at=clock.now(),
    )
    second = Fill(
        id=FillId("f2"),
        client_order_id=ClientOrderId("r1-0"),
        account=AccountId("A1"),
        symbol=Symbol("VTI"),
        side=Side.SELL,
        quantity=Quantity(D(1)),
        price=D("334.80"),
        at=clock.now(),
    )
    with book.unit_of_work(actor="t", reason="r") as uow:
        uow.orders.add([_sell(0)])
        assert uow.fills.add([fill]) == [fill]
        assert uow.fills.add([fill, second, second]) == [second]
        assert uow.fills.for_order(ClientOrderId("r1-0")) == [fill, second]
        with pytest.raises(Conflict):
            uow.fills.add(
                [
                    Fill(
                        id=FillId("f1"),
                        client_order_id=ClientOrderId("r1-0"),
                        account=AccountId("A1"),
                        symbol=Symbol("VTI"),
                        side=Side.SELL,
                        quantity=Quantity(D(2)),
                        price=D("334.8712"),
                        at=clock.now(),
                    )
                ]
            )
    with book.unit_of_work(actor="t", reason="r") as uow, pytest.raises(NotFound):
        uow.fills.add([fill])  # its order was never committed


def test_what_a_sell_fill_realised_is_kept_by_part_exactly_and_once(
    book: Store, clock: SimulatedClock
) -> None:
    fill = Fill(
        id=FillId("f1"),
        client_order_id=ClientOrderId("r1-0"),
        account=AccountId("A1"),
        symbol=Symbol("VTI"),
        side=Side.SELL,
        quantity=Quantity(D("1.123456789")),
        price=D("250"),
        at=clock.now(),
    )
    lots = [
        RealisedLot(
            fill=FillId("f1"),
            part=0,
            account=AccountId("A1"),
            symbol=Symbol("VTI"),
            sold=date(2026, 11, 24),
            quantity=Quantity(D("1")),
            proceeds=Money(D("250.00")),
            basis=Money(D("300.01")),
            acquired=date(2025, 1, 2),
        ),
        RealisedLot(
            fill=FillId("f1"),
            part=1,
            account=AccountId("A1"),
            symbol=Symbol("VTI"),
            sold=date(2026, 11, 24),
            quantity=Quantity(D("0.123456789")),
            proceeds=Money(D("30.86")),
            basis=None,
            acquired=None,
        ),
    ]
    with book.unit_of_work(actor="t", reason="fill") as uow:
        uow.orders.add([_sell(0)])
        uow.fills.add([fill])
        uow.realised.add(lots)
        uow.commit()
    with book.unit_of_work(actor="t", reason="read") as uow:
        assert uow.realised.since(date(2026, 11, 24)) == lots
        assert uow.realised.since(date(2026, 11, 25)) == []
        assert [lot.result for lot in uow.realised.since(date(2026, 1, 1))] == [D("-50.01"), None]
        assert [e.key for e in uow.audit.entries(Entity.REALISED)] == ["f1/0", "f1/1"]
    with book.unit_of_work(actor="t", reason="again") as uow, pytest.raises(Conflict):
        uow.realised.add(lots[:1])
    stranger = replace(lots[0], fill=FillId("nowhere"))
    with book.unit_of_work(actor="t", reason="no fill") as uow, pytest.raises(NotFound):
        uow.realised.add([stranger])
