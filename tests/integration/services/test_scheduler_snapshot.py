"""The long-running scheduler's snapshot: what it keeps between ticks is what a fresh read gives,
after every kind of change to the store, and it reads again only what changed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import fields, replace
from datetime import timedelta
from decimal import Decimal
from functools import partial

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rundesk import CALENDAR, START, Desk, make_desk, small_book

from rebal.adapters.storage import tables as t
from rebal.adapters.storage.book_frames import GAP_TICKS, MAX_GAPS, audit_mark, changes
from rebal.adapters.storage.unit_of_work import SqlUnitOfWork
from rebal.core.engine import RunConfig
from rebal.domain.account import Account, Holding, Price, Target
from rebal.domain.cash import CashFlow
from rebal.domain.ids import AccountId, CashFlowId, ModelId, Symbol
from rebal.domain.money import Money, Quantity
from rebal.domain.policy import InvestmentPolicy, Program, TriggerKind
from rebal.domain.run import RunType, ScopeKind
from rebal.gauge import StoreGauge, StoreSnapshot
from rebal.ports.storage import Conflict
from rebal.proposing import CorePlanner
from rebal.services.runs import RunRequest, start_run
from rebal.services.scheduler import Fresh, Reader, Reading, TickSettings, request_instant, tick

WINDOW = START.replace(hour=14, minute=31)


@pytest.fixture
def book_desk(database_url: str) -> Iterator[Desk]:
    made = make_desk(database_url, small_book(5))
    yield made
    made.store.engine.dispose()


def assert_alike(kept: Reading, fresh: Reading) -> None:
    for name in type(fresh.facts).__slots__:
        a, b = getattr(kept.facts, name), getattr(fresh.facts, name)
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind in "fM"), name
    for f in fields(fresh.accounts):
        a, b = getattr(kept.accounts, f.name), getattr(fresh.accounts, f.name)
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-12, err_msg=f.name)
        else:
            assert np.array_equal(a, b, equal_nan=a.dtype.kind == "M"), f.name


def change(desk: Desk, write: Callable[[SqlUnitOfWork], object]) -> None:
    with desk.store.unit_of_work(actor="test", reason="a change") as uow:
        write(uow)
        uow.commit()


def reprice(uow: SqlUnitOfWork) -> None:
    uow.prices.record(
        [
            Price(symbol=Symbol("VTI"), price=Decimal("262.00"), at=START),
            Price(symbol=Symbol("BND"), price=Decimal("70.10"), at=START),
        ],
        replace_all=True,
    )


def holdings(uow: SqlUnitOfWork) -> None:
    uow.holdings.replace(
        {
            AccountId("A2"): [
                Holding(
                    account=AccountId("A2"), symbol=Symbol("BND"), quantity=Quantity(Decimal(90))
                )
            ]
        }
    )


def cash(uow: SqlUnitOfWork) -> None:
    (a3,) = uow.accounts.get_many([AccountId("A3")]).values()
    uow.accounts.save([replace(a3, cash=Money(Decimal("52000.00")))])


def deposit(uow: SqlUnitOfWork) -> None:
    uow.cash_flows.add(
        CashFlow(
            id=CashFlowId("F1"),
            account=AccountId("A4"),
            amount=Money(Decimal("5000.00")),
            created_at=START,
        )
    )


def policy(uow: SqlUnitOfWork) -> None:
    uow.policies.replace(
        [
            InvestmentPolicy(
                account=AccountId("A5"),
                program=Program.CLIENT_DIRECTED,
                trigger=TriggerKind.THRESHOLD,
                band_abs=Decimal("0.9"),
                cooldown_days=3,
            )
        ]
    )


CHANGES = {
    "prices": reprice,
    "holdings": holdings,
    "cash": cash,
    "deposit": deposit,
    "policy": policy,
}


def test_the_snapshot_reads_each_change_at_the_next_tick_and_only_what_changed(
    book_desk: Desk,
) -> None:
    desk, snapshot, fresh = book_desk, StoreSnapshot(), Fresh(StoreGauge())
    assert_alike(snapshot(desk.store, actor="test"), fresh(desk.store, actor="test"))
    assert snapshot.last == "full"
    assert_alike(snapshot(desk.store, actor="test"), fresh(desk.store, actor="test"))
    assert snapshot.last == "unchanged"
    for name, write in CHANGES.items():
        before = snapshot(desk.store, actor="test")
        change(desk, write)
        kept = snapshot(desk.store, actor="test")
        assert snapshot.last == "changed", name
        assert_alike(kept, fresh(desk.store, actor="test"))
        # the reading of the tick before is not changed under its holder's feet
        assert (
            not np.array_equal(
                np.c_[
                    before.accounts.value, before.accounts.breached, before.accounts.cash_pending
                ],
                np.c_[kept.accounts.value, kept.accounts.breached, kept.accounts.cash_pending],
            )
            or name == "policy"
        ), name
    # the prices move again: the accounts read again since the full read are valued anew too
    change(
        desk,
        lambda uow: uow.prices.record(
            [Price(symbol=Symbol("BND"), price=Decimal("75.00"), at=START)]
        ),
    )
    assert_alike(snapshot(desk.store, actor="test"), fresh(desk.store, actor="test"))
    assert snapshot.last == "changed"


def test_a_run_and_an_instant_request_are_seen_by_the_next_tick(book_desk: Desk) -> None:
    desk, snapshot = book_desk, StoreSnapshot()
    settings = TickSettings(dry_run=True, max_price_age=timedelta(days=10))
    planner = CorePlanner(RunConfig())

    def decisions(reader: Reader = snapshot) -> dict[str, str]:
        outcome = tick(desk.store, CALENDAR, WINDOW, planner, reader, actor="t", settings=settings)
        return {r.account: r.decision for r in outcome.rows()}

    assert decisions() == dict.fromkeys(["A1", "A2", "A3", "A4", "A5"], "run")
    request = RunRequest(scope=ScopeKind.ACCOUNT, name="A1", type=RunType.REBALANCE, as_of=WINDOW)
    start_run(desk.store, request, planner, actor="test")
    after_run = decisions()
    assert snapshot.last == "changed"
    assert after_run["A1"] == "not_due" and after_run == decisions(Fresh(StoreGauge()))
    request_instant(desk.store, AccountId("A2"), WINDOW, actor="test")
    assert_alike(snapshot(desk.store, actor="t"), Fresh(StoreGauge())(desk.store, actor="t"))
    assert snapshot.last == "changed"


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(
            lambda uow: uow.models.set_targets(
                ModelId("balanced"), [Target(symbol=Symbol("VTI"), weight=Decimal(1))]
            ),
            id="a new model version",
        ),
        pytest.param(
            lambda uow: uow.accounts.save(
                [Account(id=AccountId("A6"), model=ModelId("balanced"), cash=Money(Decimal(5)))]
            ),
            id="a new account",
        ),
        pytest.param(
            lambda uow: uow.accounts.save(
                [replace(uow.accounts.get(AccountId("A2")), closed_at=START)]
            ),
            id="a closed account",
        ),
    ],
)
def test_a_change_beyond_some_accounts_reads_everything_again(
    book_desk: Desk, write: Callable[[SqlUnitOfWork], object]
) -> None:
    desk, snapshot = book_desk, StoreSnapshot()
    snapshot(desk.store, actor="test")
    change(desk, write)
    assert_alike(snapshot(desk.store, actor="test"), Fresh(StoreGauge())(desk.store, actor="test"))
    assert snapshot.last == "full"


def test_every_full_every_ticks_the_snapshot_reads_everything(book_desk: Desk) -> None:
    snapshot = StoreSnapshot(full_every=3)
    seen = [snapshot(book_desk.store, actor="test") and snapshot.last for _ in range(4)]
    assert seen == ["full", "unchanged", "unchanged", "full"]


def audit_row(uow: SqlUnitOfWork, seq: int, key: str) -> None:
    uow.insert(
        t.audit_log,
        [
            {
                "seq": seq,
                "firm_id": uow.firm,
                "at": uow.now,
                "actor": "test",
                "reason": "a transaction that committed late",
                "action": "update",
                "entity": "holdings",
                "key": key,
                "before": None,
                "after": None,
            }
        ],
    )


def test_a_change_committed_below_the_last_seen_is_still_read(book_desk: Desk) -> None:
    """On PostgreSQL a transaction takes its audit numbers when it writes: one committing after
    a later one leaves a gap that the next ticks look at again."""
    with book_desk.store.unit_of_work(actor="test", reason="gaps") as uow:
        mark = audit_mark(uow)
        audit_row(uow, mark + 2, "A1")
        seen = changes(uow, mark, {})
        assert (seen.entries, seen.seq, dict(seen.gaps)) == (
            (("holdings", "A1"),),
            mark + 2,
            {mark + 1: 0},
        )
        audit_row(uow, mark + 1, "A2")
        later = changes(uow, seen.seq, seen.gaps)
        assert (later.entries, later.seq, dict(later.gaps)) == ((("holdings", "A2"),), mark + 2, {})
        # a gap never filled (a rolled-back transaction) is given up after GAP_TICKS ticks
        audit_row(uow, mark + 4, "A3")
        waiting = changes(uow, mark + 2, {})
        for _ in range(GAP_TICKS):
            assert dict(waiting.gaps) == {mark + 3: _}
            waiting = changes(uow, waiting.seq, waiting.gaps)
        assert dict(waiting.gaps) == {} and waiting.entries == ()
        # too many gaps to follow: the caller reads everything again
        audit_row(uow, mark + MAX_GAPS + 10, "A4")
        assert not changes(uow, mark + 4, {}).complete
        uow.rollback()


def random_change(uow: SqlUnitOfWork, kind: str, account: int, cents: int) -> None:
    """One change of ``kind`` to account ``A<account>`` (or to the prices), sized by ``cents``."""
    name = AccountId(f"A{account}")
    if kind == "prices":
        uow.prices.record([Price(symbol=Symbol("BND"), price=Decimal(cents) / 100 + 50, at=START)])
    elif kind == "holdings":
        held = Holding(account=name, symbol=Symbol("VTI"), quantity=Quantity(Decimal(cents)))
        uow.holdings.replace({name: [held]})
    elif kind == "cash":
        (stored,) = uow.accounts.get_many([name]).values()
        uow.accounts.save([replace(stored, cash=Money(Decimal(cents)))])
    elif kind == "deposit":
        flow = CashFlow(
            id=CashFlowId(f"F{cents}-{account}"),
            account=name,
            amount=Money(Decimal(cents + 1)),
            created_at=START,
        )
        uow.cash_flows.add(flow)
    else:
        band = Decimal(cents % 50 + 1) / 100
        uow.policies.replace(
            [InvestmentPolicy(account=name, trigger=TriggerKind.THRESHOLD, band_abs=band)]
        )


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.lists(
            st.tuples(
                st.sampled_from(["prices", "holdings", "cash", "deposit", "policy"]),
                st.integers(1, 5),
                st.integers(1, 99_999),
            ),
            max_size=3,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_whatever_changes_between_ticks_the_snapshot_reads_as_a_fresh_read(
    book_desk: Desk, ticks: list[list[tuple[str, int, int]]]
) -> None:
    snapshot, fresh = StoreSnapshot(), Fresh(StoreGauge())
    snapshot(book_desk.store, actor="test")
    for changes_of_tick in ticks:
        for kind, account, cents in changes_of_tick:
            with suppress(Conflict):  # that deposit's id was drawn before
                change(book_desk, partial(random_change, kind=kind, account=account, cents=cents))
        kept = snapshot(book_desk.store, actor="test")
        assert snapshot.last != "full"
        assert_alike(kept, fresh(book_desk.store, actor="test"))
