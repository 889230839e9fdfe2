"""A harvest run's sells carry the lots the harvest chose (a lot instruction), and their fills
relieve exactly those lots in the book: what is realised (rebal.tax.realised) is what was
planned, fill by fill when the broker fills in parts; an instruction the book no longer matches
falls back to the oldest lots and the run says so. On the in-memory store, SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from itertools import groupby
from pathlib import Path
from typing import Any

import pytest
from rundesk import START, Desk, make_desk

from rebal.cli.runs import run_document
from rebal.core.engine import RunConfig
from rebal.domain.account import Account, Holding, Price, Target
from rebal.domain.book import BookSnapshot
from rebal.domain.ids import AccountId, ModelId, Symbol
from rebal.domain.money import Money, Quantity
from rebal.domain.order import Order, Side
from rebal.domain.run import Run, RunState, RunType, ScopeKind
from rebal.harvest_planner import HarvestPlanner
from rebal.services.runs import show_run
from rebal.tax.realised import RealisedLot
from rebal.tax_overlay import TaxSettings

VTI, ITOT, BND = Symbol("VTI"), Symbol("ITOT"), Symbol("BND")
T1 = AccountId("T1")
OLD = START.date() - timedelta(days=900)  # the oldest lot, far above water
LOSS = START.date() - timedelta(days=400)  # the big loss lot
LATER = START.date() - timedelta(days=200)  # a smaller loss lot, younger


def _lot(symbol: Symbol, quantity: str, basis: str, acquired: date) -> Holding:
    return Holding(
        account=T1,
        symbol=symbol,
        quantity=Quantity(Decimal(quantity)),
        cost_basis=Money(Decimal(basis)),
        acquired=acquired,
    )


#: T1's lots: VTI (at 250) bought at 150 long ago (a gain, the oldest: FIFO would sell it
#: first), at 300 (a loss of 2,000) and at 280 (a loss of 300); BND without a loss.
LOTS = (
    _lot(VTI, "20", "3000.00", OLD),
    _lot(VTI, "40", "12000.00", LOSS),
    _lot(VTI, "10", "2800.00", LATER),
    _lot(BND, "160", "11600.00", OLD),
)


def _book(holdings: tuple[Holding, ...] = LOTS) -> BookSnapshot:
    at = START - timedelta(hours=1)
    prices = tuple(
        Price(symbol=Symbol(s), price=Decimal(p), at=at)
        for s, p in {"VTI": "250.00", "BND": "72.50", "ITOT": "125.00"}.items()
    )
    targets = (Target(symbol=VTI, weight=Decimal("0.6")), Target(symbol=BND, weight=Decimal("0.4")))
    account = Account(id=T1, model=ModelId("balanced"), cash=Money(Decimal("100.00")))
    return BookSnapshot(
        models={ModelId("balanced"): targets}, accounts=(account,), holdings=holdings, prices=prices
    )


def _desk(backend: str | None, tmp_path: Path, **sim: Any) -> Desk:
    return make_desk(backend, _book(), ledger=f"sqlite:///{tmp_path / 'broker.db'}", **sim)


@pytest.fixture
def desk(store_backend: str | None, tmp_path: Path) -> Iterator[Desk]:
    made = _desk(store_backend, tmp_path)
    yield made
    made.broker.close()


def _harvest(desk: Desk) -> Run:
    planner = HarvestPlanner(
        RunConfig(), TaxSettings(as_of=START.date(), substitutes=(("VTI", "ITOT"),))
    )
    run, _ = desk.start(
        ScopeKind.ACCOUNT, "T1", RunType.HARVEST, planner=planner, also_priced=frozenset({ITOT})
    )
    return run


def _sell(desk: Desk, run: Run) -> Order:
    (sell,) = (o for o in show_run(desk.store, run.id, actor="t").orders if o.side is Side.SELL)
    return sell


def _realised(desk: Desk) -> list[RealisedLot]:
    with desk.store.unit_of_work(actor="t", reason="read") as uow:
        return list(uow.realised.since(START.date()))


def _vti_lots(desk: Desk) -> list[tuple[Decimal, Decimal | None, date | None]]:
    with desk.store.unit_of_work(actor="t", reason="read") as uow:
        held = uow.holdings.of(T1)
    return [(h.quantity, h.cost_basis, h.acquired) for h in held if h.symbol == VTI]


def _planned(sell: Order) -> list[tuple[date, Decimal]]:
    assert sell.lots is not None
    return [(p.acquired, p.quantity) for p in sell.lots.lots]


def _merged(parts: list[RealisedLot]) -> list[tuple[date | None, Decimal]]:
    """The parts in the order relieved (fill by fill), consecutive parts of one lot summed."""
    runs = groupby(parts, key=lambda p: p.acquired)
    return [(acquired, sum((p.quantity for p in run), Decimal(0))) for acquired, run in runs]


def test_a_harvest_realises_the_lots_it_planned_not_the_oldest(desk: Desk) -> None:
    run = _harvest(desk)
    sell = _sell(desk, run)
    # the harvest sells both loss lots (the short-term one first) and none of the gain lot
    assert _planned(sell) == [(LATER, Decimal("10")), (LOSS, Decimal("40"))]
    assert sell.quantity == Decimal("50")
    done = desk.execute(run)
    assert done.state is RunState.COMPLETED, done.reason
    parts = _realised(desk)
    assert [(p.acquired, p.quantity, p.basis) for p in parts] == [
        (LATER, Decimal("10"), Decimal("2800.00")),
        (LOSS, Decimal("40"), Decimal("12000.00")),
    ]
    assert sum(p.result or 0 for p in parts) == Decimal("-2300.00")  # the loss planned
    assert _vti_lots(desk) == [(Decimal("20"), Decimal("3000.00"), OLD)]  # the gain lot stays
    # the instruction is kept with the order and shown in the run's JSON
    (shown,) = (o for o in run_document(show_run(desk.store, run.id, actor="t"))["orders"]
                if o["side"] == "sell")  # fmt: skip
    instruction = shown["lot_instruction"]
    assert instruction["method"] == "specific"
    assert [(p["acquired"], p["quantity"]) for p in instruction["lots"]] == [
        (LATER.isoformat(), Decimal("10")),
        (LOSS.isoformat(), Decimal("40")),
    ]
    assert [p["lot_basis"] for p in instruction["lots"]] == [
        Decimal("2800.00"),
        Decimal("12000.00"),
    ]
    (buy,) = (o for o in show_run(desk.store, run.id, actor="t").orders if o.side is Side.BUY)
    assert buy.lots is None
    events = [e.reason for e in show_run(desk.store, run.id, actor="t").events]
    assert not any("lot instruction" in e for e in events)


def test_partial_fills_relieve_the_instructed_lots_in_order(
    store_backend: str | None, tmp_path: Path
) -> None:
    desk = _desk(
        store_backend,
        tmp_path,
        partial_fills={"probability": 1.0, "max_parts": 4, "interval_seconds": 60},
    )
    try:
        run = _harvest(desk)
        sell = _sell(desk, run)
        done = desk.execute(run)
        assert done.state is RunState.COMPLETED, done.reason
        parts = _realised(desk)
        assert len({p.fill for p in parts}) >= 2  # filled in parts, applied one at a time
        # fill after fill, the shares come off the instructed lots in the instructed order
        assert _merged(parts) == _planned(sell)
        assert sum((p.basis or 0 for p in parts), Decimal(0)) == Decimal("14800.00")
        assert _vti_lots(desk) == [(Decimal("20"), Decimal("3000.00"), OLD)]
    finally:
        desk.broker.close()


def _stale(desk: Desk, vti: tuple[Holding, ...]) -> tuple[Order, list[tuple[Any, ...]], str]:
    """A harvest planned on :data:`LOTS`, traded after the book's VTI lots became ``vti`` (a
    re-import, a correction): its sell, the parts realised (acquired, shares, basis) and the
    one event saying the instruction no longer matched."""
    run = _harvest(desk)
    sell = _sell(desk, run)
    with desk.store.unit_of_work(actor="t", reason="correct the lots") as uow:
        uow.holdings.replace({T1: [*vti, *(h for h in LOTS if h.symbol != VTI)]})
        uow.commit()
    done = desk.execute(run)
    assert done.state is RunState.COMPLETED, done.reason
    parts = [(p.acquired, p.quantity, p.basis) for p in _realised(desk)]
    events = show_run(desk.store, run.id, actor="t").events
    (event,) = [e.reason for e in events if "lot instruction no longer matches" in e.reason]
    assert event.startswith(f"order {sell.client_order_id}, fill ")
    assert event.endswith("those shares came off the oldest lots instead")
    return sell, parts, event


def test_a_lot_too_small_falls_back_to_the_oldest_lots_and_says_so(desk: Desk) -> None:
    # the 300 lot now holds 30 shares (at the same cost per share), the 280 lot is as it was
    sell, parts, event = _stale(desk, (LOTS[0], _lot(VTI, "30", "9000.00", LOSS), LOTS[2]))
    # the 280 lot and 30 from the 300 lot as named, then the 10 it lacked from the oldest lot
    assert parts == [
        (LATER, Decimal("10"), Decimal("2800.00")),
        (LOSS, Decimal("30"), Decimal("9000.00")),
        (OLD, Decimal("10"), Decimal("1500.00")),
    ]
    assert _vti_lots(desk) == [(Decimal("10"), Decimal("1500.00"), OLD)]
    assert sell.lots is not None
    big = sell.lots.lots[1].lot
    assert f"lot {big} (acquired {LOSS.isoformat()}) holds 30 of the 40 shares named" in event


def test_a_lot_gone_falls_back_to_the_oldest_lots_and_says_so(desk: Desk) -> None:
    # the 280 lot was a mistake: those shares were bought at 250 the same day
    sell, parts, event = _stale(desk, (LOTS[0], LOTS[1], _lot(VTI, "10", "2500.00", LATER)))
    # the 300 lot's 40 as named; the 10 named from the 280 lot come off the oldest lot instead
    assert parts == [
        (LOSS, Decimal("40"), Decimal("12000.00")),
        (OLD, Decimal("10"), Decimal("1500.00")),
    ]
    assert sell.lots is not None
    small = sell.lots.lots[0].lot
    assert f"lot {small} (acquired {LATER.isoformat()}) is no longer held" in event
