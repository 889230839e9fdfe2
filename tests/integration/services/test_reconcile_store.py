"""Reconciliation through the storage port, on every store (in memory, SQLite, PostgreSQL): the
book's holdings as stored (rows of one symbol summed, closed accounts left out) and an allocation
flag recorded on its run as an event that keeps the run's state."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from rebal.adapters.memory.clock import SimulatedClock
from rebal.adapters.memory.storage import InMemoryStore
from rebal.adapters.storage.database import create_engine
from rebal.adapters.storage.tables import metadata
from rebal.adapters.storage.unit_of_work import SqlStore
from rebal.domain.account import Account, Holding, Target
from rebal.domain.firm import Firm
from rebal.domain.ids import DEFAULT_FIRM, AccountId, ModelId, RunId, Symbol
from rebal.domain.money import Money, Quantity
from rebal.domain.run import Run, RunKey, RunState, RunType, ScopeKind
from rebal.ports.storage import Store
from rebal.services.reconcile import Holdings, book_holdings, check_allocation, flag_run

AT = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
A1, A2, A3 = AccountId("A1"), AccountId("A2"), AccountId("A3")
VTI, BND = Symbol("VTI"), Symbol("BND")


def d(text: str) -> Decimal:
    return Decimal(text)


@pytest.fixture
def store(store_backend: str | None) -> Iterator[Store]:
    """A store with one firm, a model and three accounts (A3 closed)."""
    clock = SimulatedClock(AT)
    engine = None
    if store_backend is None:
        made: Store = InMemoryStore(clock)
    else:
        engine = create_engine(store_backend)
        metadata.create_all(engine)
        made = SqlStore(engine, clock)
    with made.unit_of_work(actor="t", reason="a book") as uow:
        uow.firms.add(Firm(id=DEFAULT_FIRM, name="Default", created_at=AT))
        uow.models.set_targets(
            ModelId("bal"),
            [Target(symbol=VTI, weight=d("0.6")), Target(symbol=BND, weight=d("0.4"))],
        )
        uow.accounts.save(
            [
                Account(id=a, model=ModelId("bal"), cash=Money(d(c)))
                for a, c in ((A1, "100.00"), (A2, "0.01"), (A3, "5.00"))
            ]
        )
        uow.holdings.replace(
            {
                A1: [
                    Holding(account=A1, symbol=VTI, quantity=Quantity(d("6.5"))),
                    Holding(account=A1, symbol=BND, quantity=Quantity(d("2"))),
                    Holding(account=A1, symbol=VTI, quantity=Quantity(d("0.000000001"))),
                ],
                A3: [Holding(account=A3, symbol=BND, quantity=Quantity(d("1")))],
            }
        )
        uow.accounts.save(
            [Account(id=A3, model=ModelId("bal"), cash=Money(d("5.00")), closed_at=AT)]
        )
        uow.commit()
    yield made
    if engine is not None:
        engine.dispose()


def test_the_book_as_stored_is_what_reconciliation_compares(store: Store) -> None:
    with store.unit_of_work(actor="t", reason="read") as uow:
        book = book_holdings(uow)
    assert book == {
        A1: Holdings(Money(d("100.00")), {VTI: Quantity(d("6.500000001")), BND: Quantity(d("2"))}),
        A2: Holdings(Money(d("0.01")), {}),
    }


def test_an_allocation_flag_is_an_event_of_the_run(store: Store) -> None:
    key = RunKey(ScopeKind.ACCOUNT, "A1", date(2026, 11, 24), RunType.REBALANCE, 1)
    run = Run(id=RunId("r1"), key=key, state=RunState.QUEUED, created_at=AT, updated_at=AT)
    prices = {VTI: d("100"), BND: d("50")}
    # A1 reached 650.00 VTI, 100.00 BND and 100.00 cash of 850.00: VTI 76.47%, off target.
    off = check_allocation(
        A1,
        {VTI: d("0.6"), BND: d("0.4")},
        {VTI: Quantity(d("6.5")), BND: Quantity(d("2"))},
        prices,
        Money(d("100.00")),
    )
    fine = check_allocation(
        A2,
        {VTI: d("0.6"), BND: d("0.4")},
        {VTI: Quantity(d("6")), BND: Quantity(d("8"))},
        prices,
        Money(d("0.00")),
    )
    with store.unit_of_work(actor="t", reason="run") as uow:
        uow.runs.start(run, "asked for")
        uow.runs.transition(run.id, RunState.IN_PROGRESS, AT, "started")
        assert flag_run(uow, run.id, [off, fine]) == 1
        uow.commit()
    with store.unit_of_work(actor="t", reason="read") as uow:
        stored = uow.runs.get(run.id)
        events = uow.runs.events(run.id)
    assert stored is not None and stored.state is RunState.IN_PROGRESS
    assert events[-1].state is RunState.IN_PROGRESS
    assert events[-1].reason == (
        "allocation flagged: account A1 is off its intended allocation by more than 0.50 "
        "percentage points: VTI 76.47% vs 60.00% intended; BND 11.76% vs 40.00% intended; "
        "CASH 11.76% vs 0.00% intended"
    )
    assert len(events) == 3
