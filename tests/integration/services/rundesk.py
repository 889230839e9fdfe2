"""For the run tests: a small stored book on each database, a simulated broker beside it on
the same clock, and a helper that starts and executes runs: real parts, no mocks."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from rebal.adapters.brokers.simulated import SimulatedBroker, SimulatorSettings
from rebal.adapters.brokers.simulated import tables as sim
from rebal.adapters.calendars.exchange import ExchangeCalendar
from rebal.adapters.memory.clock import SimulatedClock
from rebal.adapters.memory.prices import InMemoryPrices
from rebal.adapters.memory.storage import InMemoryStore
from rebal.adapters.storage.database import create_engine
from rebal.adapters.storage.migrate import upgrade
from rebal.adapters.storage.unit_of_work import SqlStore
from rebal.core.engine import RunConfig
from rebal.domain.account import Account, Holding, Price, Target
from rebal.domain.book import BookSnapshot
from rebal.domain.ids import AccountId, ModelId, Symbol
from rebal.domain.money import Money, Quantity
from rebal.domain.run import Run, RunType, ScopeKind
from rebal.proposing import CorePlanner
from rebal.services.book import import_book
from rebal.services.compliance import ComplianceConfig, RunCompliance
from rebal.services.execution import ExecutionSettings, execute_run
from rebal.services.runs import Planner, RunRequest, start_run

ET = ZoneInfo("America/New_York")
#: Tuesday 2026-11-24, 10:00 in New York: an ordinary session.
START = datetime(2026, 11, 24, 10, 0, tzinfo=ET)
CALENDAR = ExchangeCalendar.around(START, days_before=30, days_after=60)
PRICES = {"VTI": "250.00", "BND": "72.50"}


def d(text: str) -> Decimal:
    return Decimal(text)


def small_book(n: int = 2) -> BookSnapshot:
    """``n`` accounts of a 60/40 model, each all in VTI with some cash: each must sell VTI and
    buy BND."""
    targets = (
        Target(symbol=Symbol("VTI"), weight=d("0.6")),
        Target(symbol=Symbol("BND"), weight=d("0.4")),
    )
    accounts = tuple(
        Account(id=AccountId(f"A{i}"), model=ModelId("balanced"), cash=Money(d("1000.00")))
        for i in range(1, n + 1)
    )
    holdings = tuple(
        Holding(
            account=a.id,
            symbol=Symbol("VTI"),
            quantity=Quantity(d("40")),
            cost_basis=Money(d("8000.00")),
            acquired=START.date() - timedelta(days=400),
        )
        for a in accounts
    )
    prices = tuple(
        Price(symbol=Symbol(s), price=d(p), at=START - timedelta(hours=1))
        for s, p in PRICES.items()
    )
    return BookSnapshot(
        models={ModelId("balanced"): targets}, accounts=accounts, holdings=holdings, prices=prices
    )


def flow_book(flow: str, n: int = 1) -> BookSnapshot:
    """:func:`small_book` with a pending deposit (positive ``flow``) or withdrawal in A1."""
    book = small_book(n)
    first = replace(book.accounts[0], pending_cash=Money(d(flow)))
    return replace(book, accounts=(first, *book.accounts[1:]))


def flow_desk(url: str | None, flow: str, **sim: Any) -> Desk:
    """The desk of :func:`flow_book` (one account) at ``url``."""
    return make_desk(url, flow_book(flow), **sim)


@dataclass
class Desk:
    """The store, the broker and the clock of one test."""

    url: str
    store: SqlStore
    clock: SimulatedClock
    prices: InMemoryPrices
    broker: SimulatedBroker

    def start(
        self,
        scope: ScopeKind = ScopeKind.MODEL,
        name: str = "balanced",
        type: RunType = RunType.REBALANCE,
        planner: Planner | None = None,
        also_priced: frozenset[Symbol] = frozenset(),
        **options: Any,
    ) -> tuple[Run, bool]:
        """Start a run (the core's planner under ``options`` unless ``planner`` is given)."""
        request = RunRequest(
            scope=scope,
            name=name,
            type=type,
            as_of=self.clock.now(),
            amount=options.pop("amount", None),
            config=options.pop("config", "{}"),
            also_priced=also_priced,
        )
        chosen = planner or CorePlanner(RunConfig(**options))
        return start_run(self.store, request, chosen, actor="test")

    def compliance(self, config: ComplianceConfig | None = None, **more: Any) -> RunCompliance:
        """The run's checks on the desk's calendar and quotes; a quote may be a day old (the
        book's prices are an hour old when the runs start)."""
        return RunCompliance(
            calendar=CALENDAR,
            prices=self.prices,
            config=config or ComplianceConfig(),
            default_price_age=timedelta(days=1),
            **more,
        )

    def execute(self, run: Run, compliance: RunCompliance | None = None, **settings: Any) -> Run:
        return execute_run(
            self.store,
            self.broker,
            run.id,
            clock=self.clock,
            actor="test",
            settings=ExecutionSettings(**settings),
            compliance=compliance or self.compliance(),
        )


def submits(desk: Desk) -> dict[str, int]:
    """How many times the simulated broker was asked to submit each client order id."""
    with desk.store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(sim.requests.c.client_order_id, sa.func.count())
            .where(sim.requests.c.operation == "submit")
            .group_by(sim.requests.c.client_order_id)
        ).all()
    return {cid: n for cid, n in rows}


def make_desk(url: str | None, book: BookSnapshot, *, ledger: str = "", **sim: Any) -> Desk:
    """The desk on the database at ``url``; ``None``: on the in-memory store, the simulated
    broker's ledger in the SQLite database ``ledger``."""
    clock = SimulatedClock(START - timedelta(minutes=30))
    if url is None:
        store = InMemoryStore(clock)
        with store.unit_of_work(actor="test", reason="import") as uow:
            import_book(uow, book)
            uow.commit()
        clock.advance(timedelta(minutes=30))
        return Desk("memory", store, clock, *_market(create_engine(ledger), clock, book, sim))
    engine = create_engine(url)
    upgrade(engine)
    with SqlStore(engine, clock).unit_of_work(actor="test", reason="import") as uow:
        import_book(uow, book)
        uow.commit()
    engine.dispose()
    return attach(url, book, **sim)


def attach(url: str, book: BookSnapshot, **sim: Any) -> Desk:
    """A desk of its own (engine, clock at :data:`START`, broker) on the stored book at ``url``:
    what a second process trading the same book has."""
    engine = create_engine(url)
    clock = SimulatedClock(START)
    return Desk(url, SqlStore(engine, clock), clock, *_market(engine, clock, book, sim))


def _market(
    engine: Any, clock: SimulatedClock, book: BookSnapshot, sim: dict[str, Any]
) -> tuple[InMemoryPrices, SimulatedBroker]:
    """The book's quotes and a simulated broker keeping its ledger in ``engine``."""
    prices = InMemoryPrices(book.prices)
    broker = SimulatedBroker(
        engine,
        clock=clock,
        prices=prices,
        calendar=CALENDAR,
        settings=SimulatorSettings.model_validate(sim),
    )
    return prices, broker
