"""Harvest runs (``RunType.HARVEST``) on the store and the simulated broker: the tax layer's
loss harvesting on the stored lots, traded once; on the in-memory store, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from rundesk import START, Desk, make_desk

from rebal.core.engine import RunConfig
from rebal.domain.account import Account, AccountType, Holding, Price, Target
from rebal.domain.book import BookSnapshot
from rebal.domain.ids import AccountId, HouseholdId, ModelId, Symbol
from rebal.domain.money import Money, Quantity
from rebal.domain.order import OrderState, Side
from rebal.domain.run import RunState, RunType, ScopeKind
from rebal.harvest_planner import HarvestPlanner
from rebal.services.runs import RunInputError, RunView, show_run
from rebal.tax_overlay import TaxSettings

VTI, ITOT, SCHB, BND = (Symbol(s) for s in ("VTI", "ITOT", "SCHB", "BND"))
GROUPS = (("VTI", "ITOT", "SCHB"),)
BOUGHT = START.date() - timedelta(days=400)


def _lot(account: str, symbol: str, quantity: str, basis: str) -> Holding:
    return Holding(
        account=AccountId(account),
        symbol=Symbol(symbol),
        quantity=Quantity(Decimal(quantity)),
        cost_basis=Money(Decimal(basis)),
        acquired=BOUGHT,
    )


def _book() -> BookSnapshot:
    """A 60/40 model (VTI/BND) at VTI 250, ITOT and SCHB 125, BND 72.50: T1 (taxable) holds a
    VTI lot 3,000 below its basis and a BND lot without a loss; I1 (IRA) the same; T2
    (taxable, T1's household) an ITOT lot at a loss; T3 (taxable) everything at a gain."""
    accounts = (
        Account(
            id=AccountId("T1"),
            model=ModelId("balanced"),
            cash=Money(Decimal("100.00")),
            household=HouseholdId("H"),
        ),
        Account(
            id=AccountId("I1"),
            model=ModelId("balanced"),
            cash=Money(Decimal("100.00")),
            type=AccountType.IRA,
        ),
        Account(
            id=AccountId("T2"),
            model=ModelId("balanced"),
            cash=Money(Decimal("100.00")),
            household=HouseholdId("H"),
        ),
        Account(id=AccountId("T3"), model=ModelId("balanced"), cash=Money(Decimal("100.00"))),
    )
    holdings = (
        _lot("T1", "VTI", "60", "18000.00"),
        _lot("T1", "BND", "140", "10150.00"),
        _lot("I1", "VTI", "60", "18000.00"),
        _lot("I1", "BND", "140", "10150.00"),
        _lot("T2", "ITOT", "120", "18000.00"),
        _lot("T2", "BND", "140", "10150.00"),
        _lot("T3", "VTI", "60", "12000.00"),
        _lot("T3", "BND", "140", "9000.00"),
    )
    at = START - timedelta(hours=1)
    prices = tuple(
        Price(symbol=Symbol(s), price=Decimal(p), at=at)
        for s, p in {"VTI": "250.00", "BND": "72.50", "ITOT": "125.00", "SCHB": "125.00"}.items()
    )
    targets = (
        Target(symbol=VTI, weight=Decimal("0.6")),
        Target(symbol=BND, weight=Decimal("0.4")),
    )
    return BookSnapshot(
        models={ModelId("balanced"): targets}, accounts=accounts, holdings=holdings, prices=prices
    )


@pytest.fixture
def desk(store_backend: str | None, tmp_path: Path) -> Iterator[Desk]:
    made = make_desk(store_backend, _book(), ledger=f"sqlite:///{tmp_path / 'broker.db'}")
    yield made
    made.broker.close()


def _harvest(desk: Desk, scope: ScopeKind, name: str, groups: tuple[tuple[str, ...], ...] = GROUPS):
    planner = HarvestPlanner(RunConfig(), TaxSettings(as_of=START.date(), substitutes=groups))
    symbols = frozenset(Symbol(s) for g in groups for s in g)
    return desk.start(scope, name, RunType.HARVEST, planner=planner, also_priced=symbols)


def _reasons(view: RunView) -> dict[str, str]:
    return {o.account: o.reason for o in view.outcomes}


def test_a_harvest_run_sells_the_loss_lot_and_buys_the_substitute(desk: Desk) -> None:
    run, new = _harvest(desk, ScopeKind.ACCOUNT, "T1")
    assert new
    done = desk.execute(run)
    assert done.state is RunState.COMPLETED, done.reason
    view = show_run(desk.store, run.id, actor="t")
    sides = {(o.symbol, o.side) for o in view.orders}
    assert sides == {(VTI, Side.SELL), (ITOT, Side.BUY)}
    (sell,) = (o for o in view.orders if o.side is Side.SELL)
    assert sell.quantity == Decimal("60") and sell.filled_quantity == Decimal("60")
    (buy,) = (o for o in view.orders if o.side is Side.BUY)
    assert buy.notional == Decimal("15000.00")  # the proceeds, keeping the allocation
    assert _reasons(view)["T1"].startswith("harvest: Sell 60")
    with desk.store.unit_of_work(actor="t", reason="read") as uow:
        lots = {h.symbol: h for h in uow.holdings.of(AccountId("T1"))}
    assert VTI not in lots and lots[BND].quantity == Decimal("140")
    assert lots[ITOT].cost_basis == buy.notional and lots[ITOT].acquired == START.date()


def test_a_harvest_run_repeated_the_same_day_is_the_same_run(desk: Desk) -> None:
    run, _ = _harvest(desk, ScopeKind.ACCOUNT, "T1")
    desk.execute(run)
    desk.clock.advance(timedelta(hours=2))
    again, new = _harvest(desk, ScopeKind.ACCOUNT, "T1")
    assert not new and again.id == run.id and again.state is RunState.COMPLETED
    assert len(show_run(desk.store, run.id, actor="t").orders) == 2
    assert len(desk.broker.orders()) == 2  # nothing sent twice


def test_an_ira_account_gets_no_orders_and_says_why(desk: Desk) -> None:
    run, _ = _harvest(desk, ScopeKind.ACCOUNT, "I1")
    done = desk.execute(run)
    view = show_run(desk.store, run.id, actor="t")
    assert done.state is RunState.COMPLETED and view.orders == ()
    assert _reasons(view) == {"I1": "not harvested: IRA accounts realise no taxable loss"}
    assert desk.broker.orders() == []


def test_a_batch_harvests_without_a_wash_sale_in_the_household(desk: Desk) -> None:
    run, _ = _harvest(desk, ScopeKind.MODEL, "balanced")
    assert desk.execute(run).state is RunState.COMPLETED
    view = show_run(desk.store, run.id, actor="t")
    household = [o for o in view.orders if o.account in ("T1", "T2")]
    sold = {o.symbol for o in household if o.side is Side.SELL}
    bought = {o.symbol for o in household if o.side is Side.BUY}
    assert VTI in sold and not sold & bought  # nothing sold at a loss is bought back
    assert {o.account for o in view.orders} == {"T1"}
    reasons = _reasons(view)
    # T2's ITOT loss is not harvested: ITOT is what T1 buys instead of VTI in this run
    assert reasons["T2"].startswith("nothing to harvest")
    assert reasons["T3"].startswith("nothing to harvest")
    assert reasons["I1"].startswith("not harvested: IRA")


def test_without_a_priced_substitute_nothing_is_harvested(desk: Desk) -> None:
    run, _ = _harvest(desk, ScopeKind.ACCOUNT, "T1", groups=(("VTI", "VTSAX"),))
    view = show_run(desk.store, run.id, actor="t")
    assert view.orders == () and _reasons(view)["T1"].startswith("nothing to harvest")


def test_the_core_planner_refuses_a_harvest_run(desk: Desk) -> None:
    with pytest.raises(RunInputError, match="harvest run"):
        desk.start(ScopeKind.ACCOUNT, "T1", RunType.HARVEST)


def test_the_harvest_planner_plans_only_harvest_runs(desk: Desk) -> None:
    planner = HarvestPlanner(RunConfig(), TaxSettings(as_of=START.date(), substitutes=GROUPS))
    with pytest.raises(RunInputError, match="not rebalance runs"):
        desk.start(ScopeKind.ACCOUNT, "T1", RunType.REBALANCE, planner=planner)


def test_a_later_harvest_buying_back_a_harvested_loss_is_blocked_before_it_sells(
    desk: Desk,
) -> None:
    first, _ = _harvest(desk, ScopeKind.ACCOUNT, "T1")  # sells VTI at a loss, buys ITOT
    desk.execute(first)
    desk.clock.advance(timedelta(days=1))
    at = desk.clock.now() - timedelta(minutes=5)
    quotes = [
        Price(symbol=Symbol(s), price=Decimal(p), at=at)
        for s, p in {"VTI": "250.00", "BND": "72.50", "ITOT": "110.00", "SCHB": "110.00"}.items()
    ]
    with desk.store.unit_of_work(actor="test", reason="quotes") as uow:
        uow.prices.record(quotes)
        uow.commit()
    for quote in quotes:
        desk.prices.add(quote)
    # ITOT is now 1,800 below its basis; the planner's first substitute is VTI, whose loss was
    # realised yesterday: pre-trade compliance refuses the wash sale before anything is sent
    second, new = _harvest(desk, ScopeKind.ACCOUNT, "T1")
    assert new and second.id != first.id
    done = desk.execute(second)
    view = show_run(desk.store, second.id, actor="t")
    assert done.state is RunState.ERROR
    assert "WASH_SALE: buying VTI would wash the loss of 3000.00" in done.reason
    assert all(o.state is OrderState.CANCELED for o in view.orders)
    assert len(desk.broker.orders()) == 2  # only the first run's orders were ever sent
