"""One scheduler tick over a stored book: each rule's decision becomes a run (or none), once."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from rundesk import CALENDAR, ET, Desk, make_desk, small_book

from rebal.adapters.memory.storage import InMemoryStore
from rebal.adapters.storage.unit_of_work import SqlStore
from rebal.compliance.codes import Code
from rebal.compliance.hours import RunKind
from rebal.compliance.rules import ComplianceReport, Violation
from rebal.core.bands import BandSpec
from rebal.core.engine import RunConfig
from rebal.domain.ids import AccountId, RunId, Symbol
from rebal.domain.money import Money
from rebal.domain.policy import Frequency, InvestmentPolicy, Program, TriggerKind
from rebal.domain.run import Run, RunState, RunType, ScopeKind
from rebal.gauge import StoreGauge
from rebal.ports.policies import ScheduleFacts
from rebal.proposing import CorePlanner
from rebal.services.book import import_book
from rebal.services.compliance import blocked_reason, violation_note
from rebal.services.runs import RunRequest, start_run
from rebal.services.scheduler import (
    Fresh,
    PolicyTerms,
    TickRow,
    TickSettings,
    postpone,
    read_facts,
    request_instant,
    tick,
)

WINDOW = datetime(2026, 11, 24, 14, 31, tzinfo=ET)  # a Tuesday's managed window (14:30 ET)
SETTINGS = TickSettings(max_price_age=timedelta(days=10))


def run_tick(desk: Desk, at: datetime, store: SqlStore | None = None, **options) -> list[TickRow]:
    settings = options.pop("settings", SETTINGS)
    return tick(
        store or desk.store,
        CALENDAR,
        at,
        CorePlanner(RunConfig()),
        options.pop("reader", None) or Fresh(StoreGauge()),
        actor="test",
        settings=settings,
        **options,
    ).rows()


def by_account(rows: list[TickRow]) -> dict[str, TickRow]:
    return {r.account: r for r in rows}


def stored_runs(desk: Desk) -> list:
    with desk.store.unit_of_work(actor="test", reason="read") as uow:
        return list(uow.runs.list())


def set_policies(desk: Desk, *policies: InvestmentPolicy) -> None:
    with desk.store.unit_of_work(actor="test", reason="policies") as uow:
        uow.policies.replace(policies)
        uow.commit()


def test_a_tick_starts_each_due_run_and_a_repeated_tick_creates_none(desk: Desk) -> None:
    first = run_tick(desk, WINDOW)
    assert [(r.account, r.trigger, r.decision) for r in first] == [
        ("A1", "calendar", "run"),
        ("A2", "calendar", "run"),
    ]
    assert all(r.run_id for r in first)
    assert first[0].next_check_at == datetime(2026, 11, 25, 14, 30, tzinfo=ET)
    again = run_tick(desk, WINDOW + timedelta(minutes=1))
    assert [(r.decision, r.reason) for r in again] == [
        ("not_due", "already rebalanced in this window")
    ] * 2
    assert sorted(r.id for r in stored_runs(desk)) == sorted(r.run_id for r in first)


def test_a_dry_run_decides_and_creates_nothing(desk: Desk) -> None:
    rows = run_tick(desk, WINDOW, settings=TickSettings(dry_run=True))
    assert [r.decision for r in rows] == ["run", "run"] and not any(r.run_id for r in rows)
    assert stored_runs(desk) == []


def test_two_schedulers_ticking_at_once_create_each_run_once(desk: Desk) -> None:
    stores = [SqlStore.open(desk.url, desk.clock) for _ in range(2)]
    results: list[list[TickRow]] = []
    threads = [
        threading.Thread(target=lambda s=s: results.append(run_tick(desk, WINDOW, store=s)))
        for s in stores
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    runs = stored_runs(desk)
    assert len(runs) == 2 and len({r.key for r in runs}) == 2
    created = {r.run_id for rows in results for r in rows if r.run_id}
    assert created == {r.id for r in runs}


def test_the_policy_cadence_reads_the_last_run_from_the_store(desk: Desk) -> None:
    set_policies(desk, InvestmentPolicy(account=AccountId("A1"), program=Program.CLIENT_DIRECTED))
    run_tick(desk, WINDOW)
    rows = by_account(run_tick(desk, WINDOW + timedelta(days=1)))
    assert rows["A1"].decision == "not_due"
    assert rows["A1"].next_check_at == WINDOW + timedelta(days=7)  # 7 days from the last run
    assert rows["A2"].decision == "run"  # managed: every trading day


def test_a_manual_policy_is_not_scheduled(desk: Desk) -> None:
    set_policies(desk, InvestmentPolicy(account=AccountId("A1"), trigger=TriggerKind.MANUAL))
    rows = by_account(run_tick(desk, WINDOW))
    assert (rows["A1"].decision, rows["A1"].next_check_at) == ("not_due", None)


def test_an_instant_request_made_while_closed_runs_once_the_market_trades(desk: Desk) -> None:
    request_instant(
        desk.store, AccountId("A1"), datetime(2026, 11, 23, 20, 0, tzinfo=ET), actor="test"
    )
    morning = datetime(2026, 11, 24, 10, 0, tzinfo=ET)  # open, before the managed window
    rows = by_account(run_tick(desk, morning))
    assert (rows["A1"].trigger, rows["A1"].decision) == ("instant", "run")
    assert rows["A2"].decision == "not_due"
    with desk.store.unit_of_work(actor="test", reason="read") as uow:
        assert uow.policies.marks() == {}  # the request is spent


def _blocked_by_a_day_trade(desk: Desk, kinds: list[RunKind]):
    """An execution whose pre-trade compliance blocks the run for a pattern day trade, recorded
    as rebal.services.run_compliance records it (the violation as an event, the run in error)."""

    def execute(run: RunId, kind: RunKind) -> Run:
        kinds.append(kind)
        with desk.store.unit_of_work(actor="test", reason="blocked") as uow:
            found = uow.runs.get(run)
            assert found is not None
            account = AccountId(found.key.name)
            day_trade = Violation(Code.PATTERN_DAY_TRADE, "VTI was bought earlier today")
            uow.runs.transition(run, RunState.IN_PROGRESS, uow.now, "started")
            uow.runs.note(run, uow.now, violation_note("sells", account, day_trade))
            report = ComplianceReport(account, uow.now, (day_trade,))
            done = uow.runs.transition(run, RunState.ERROR, uow.now, blocked_reason([report]))
            uow.commit()
        return done

    return execute


def test_a_scheduled_run_blocked_by_a_day_trade_waits_for_the_next_open(desk: Desk) -> None:
    kinds: list[RunKind] = []
    rows = by_account(run_tick(desk, WINDOW, execute=_blocked_by_a_day_trade(desk, kinds)))
    next_open = datetime(2026, 11, 25, 9, 30, tzinfo=ET)  # the calendar's open, not 9:00
    assert (rows["A1"].decision, rows["A1"].next_check_at) == ("postponed", next_open)
    assert "PATTERN_DAY_TRADE" in rows["A1"].reason
    assert kinds == [RunKind.SCHEDULED] * 2
    with desk.store.unit_of_work(actor="test", reason="read") as uow:
        alerts = [e.notification for e in uow.outbox.entries()]
    postponed = {n.account: n for n in alerts if n.topic == "run.postponed"}
    postponed_rows = {a for a, r in rows.items() if r.decision == "postponed"}
    assert set(postponed) == postponed_rows and postponed["A1"].run == rows["A1"].run_id
    assert datetime.fromisoformat(postponed["A1"].payload["postponed_to"]) == next_open
    assert "PATTERN_DAY_TRADE" in postponed["A1"].payload["reason"]
    # a tick before the open keeps it postponed; at the open (outside the window) it runs
    early = by_account(run_tick(desk, next_open - timedelta(hours=1)))
    assert (early["A1"].decision, early["A1"].next_check_at) == ("postponed", next_open)
    opened = by_account(run_tick(desk, next_open + timedelta(minutes=1)))
    assert opened["A1"].decision == "run" and opened["A1"].run_id
    assert opened["A1"].reason == "postponed run: the next session has opened"


def test_an_instant_run_blocked_by_a_day_trade_is_not_rescheduled(desk: Desk) -> None:
    request_instant(desk.store, AccountId("A1"), WINDOW, actor="test")
    kinds: list[RunKind] = []
    morning = datetime(2026, 11, 24, 10, 0, tzinfo=ET)
    rows = by_account(run_tick(desk, morning, execute=_blocked_by_a_day_trade(desk, kinds)))
    assert kinds == [RunKind.INSTANT]
    assert rows["A1"].decision == "blocked" and "PATTERN_DAY_TRADE" in rows["A1"].reason
    with desk.store.unit_of_work(actor="test", reason="read") as uow:
        assert uow.policies.marks() == {}
    later = by_account(run_tick(desk, morning + timedelta(hours=1)))
    assert later["A1"].decision == "not_due"
    # in the window the account is due again: the blocked run of the day is shown, not redone
    window = by_account(run_tick(desk, WINDOW))
    assert window["A1"].decision == "blocked" and window["A1"].run_id == rows["A1"].run_id


def test_executed_runs_trade_through_the_broker(desk: Desk) -> None:
    rows = run_tick(
        desk,
        WINDOW,
        execute=lambda rid, kind: desk.execute(next(r for r in stored_runs(desk) if r.id == rid)),
    )
    states = {r.id: r.state for r in stored_runs(desk)}
    assert {states[r.run_id] for r in rows} <= {RunState.COMPLETED, RunState.COMPLETED_ADJUSTED}


def test_an_account_that_cannot_trade_is_blocked(database_url: str) -> None:
    book = small_book()
    book = replace(book, accounts=(replace(book.accounts[0], can_trade=False), book.accounts[1]))
    desk = make_desk(database_url, book)
    try:
        rows = by_account(run_tick(desk, WINDOW))
        assert rows["A1"].decision == "blocked" and "ACCOUNT_CANNOT_TRADE" in rows["A1"].reason
        assert rows["A2"].decision == "run"
    finally:
        desk.store.engine.dispose()


def test_policy_bands_replace_the_models_for_a_threshold_account(desk: Desk) -> None:
    wide = InvestmentPolicy(
        account=AccountId("A1"), trigger=TriggerKind.THRESHOLD, band_rel=Decimal("1")
    )
    default = InvestmentPolicy(account=AccountId("A2"), trigger=TriggerKind.THRESHOLD)
    set_policies(desk, wide, default)
    rows = by_account(run_tick(desk, WINDOW))
    assert (rows["A1"].decision, rows["A1"].reason) == ("skipped", "checked: inside the bands")
    assert (rows["A2"].decision, rows["A2"].reason) == ("run", "a band is breached")


def test_the_gauge_measures_a_database_and_a_memory_store_alike(database_url: str) -> None:
    book = small_book(3)
    first, second, third = book.accounts
    book = replace(
        book,
        accounts=(
            first,
            replace(second, restricted=frozenset({Symbol("BND")}), cash=Money(Decimal("20000"))),
            replace(third, pending_cash=Money(Decimal("-500.00"))),
        ),
    )
    desk = make_desk(database_url, book)
    memory = InMemoryStore(desk.clock)
    with memory.unit_of_work(actor="test", reason="import") as uow:
        import_book(uow, book)
        uow.commit()
    ids = [AccountId("A2"), AccountId("A1"), AccountId("GONE"), AccountId("A3")]
    unset = np.full(4, np.nan)
    bands = np.array([np.nan, 1.0, np.nan, np.nan]), unset, unset, np.array([np.nan] * 3 + [2.0])
    on_db = StoreGauge()(desk.store, ids, *bands)
    in_memory = StoreGauge()(memory, ids, *bands)
    desk.store.engine.dispose()
    np.testing.assert_allclose(on_db[0], in_memory[0])
    assert on_db[0].tolist() == pytest.approx([30_000.0, 11_000.0, 0.0, 11_000.0])
    assert on_db[1].tolist() == in_memory[1].tolist()
    assert on_db[2].tolist() == in_memory[2].tolist()
    # A1 within its own 100-point absolute band; an account the book lacks is never breached
    assert on_db[1].tolist()[1:3] == [False, False]
    # A1 within twice its own band; A3 (VTI at 91 % of a 60 % target) outside the run's 20 %
    # band but inside its own wide band of 200 % (the run's wide band, 40 %, would be breached)
    assert on_db[1].tolist()[3] and on_db[2].tolist()[1:] == [False, False, False]
    default_wide = StoreGauge()(memory, ids, *bands[:3], unset)
    assert default_wide[2].tolist()[3]


def test_schedule_facts_read_alike_from_a_database_and_from_memory(desk: Desk) -> None:
    memory = InMemoryStore(desk.clock)
    with memory.unit_of_work(actor="test", reason="import") as uow:
        import_book(uow, small_book())
        uow.commit()
    policy = InvestmentPolicy(
        account=AccountId("A1"),
        program=Program.CLIENT_DIRECTED,
        trigger=TriggerKind.HYBRID,
        frequency=Frequency.ON_DAY,
        day=WINDOW.date(),
        band_abs=Decimal("0.05"),
        cadence_days=14,
        cooldown_days=3,
    )
    tiered = InvestmentPolicy(
        account=AccountId("A2"),
        trigger=TriggerKind.TIERED,
        band_rel=Decimal("0.10"),
        wide_band_rel=Decimal("0.30"),
    )
    for store in (desk.store, memory):
        with store.unit_of_work(actor="test", reason="policies") as uow:
            uow.policies.replace([policy, tiered])
            uow.commit()
        with store.unit_of_work(actor="test", reason="read") as uow:
            assert list(uow.policies.all()) == [policy, tiered]
        request_instant(store, AccountId("A2"), WINDOW, actor="test")
        postpone(store, AccountId("A1"), WINDOW + timedelta(days=1), "day trade", actor="test")
        request = RunRequest(
            scope=ScopeKind.ACCOUNT, name="A1", type=RunType.REBALANCE, as_of=WINDOW
        )
        start_run(store, request, CorePlanner(RunConfig()), actor="test")
    on_db, in_memory = read_facts(desk.store, actor="test"), read_facts(memory, actor="test")
    for name in ScheduleFacts.__slots__:
        a, b = getattr(on_db, name), getattr(in_memory, name)
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind in "fM"), name
    assert on_db.last_run_at[0] == np.datetime64(WINDOW.astimezone(UTC).replace(tzinfo=None), "s")
    assert on_db.marked.tolist() == [True, True]
    assert np.isnan(on_db.wide_band_rel[0]) and on_db.wide_band_rel[1] == pytest.approx(0.3)


def test_a_tiered_accounts_wide_band_runs_it_in_its_quiet_period(desk: Desk) -> None:
    """Both accounts (11,000, below the value threshold) were rebalanced 100 days ago: in the
    quiet period. Each holds VTI at 91 % of a 60 % target: outside the run's 20 % band. A1's
    wide band is the tiered policy's (twice the band, 40 %): breached, A1 runs; A2's own wide
    band of 100 % holds it (BND at 0 % is on its edge; its inner band waits out the quiet
    period)."""
    earlier = WINDOW - timedelta(days=100)
    for account in ("A1", "A2"):
        request = RunRequest(
            scope=ScopeKind.ACCOUNT, name=account, type=RunType.REBALANCE, as_of=earlier
        )
        start_run(desk.store, request, CorePlanner(RunConfig()), actor="test")
    set_policies(
        desk,
        InvestmentPolicy(account=AccountId("A1"), trigger=TriggerKind.TIERED),
        InvestmentPolicy(
            account=AccountId("A2"), trigger=TriggerKind.TIERED, wide_band_rel=Decimal("1")
        ),
    )
    rows = by_account(run_tick(desk, WINDOW, settings=replace(SETTINGS, dry_run=True)))
    assert (rows["A1"].trigger, rows["A1"].decision) == ("tiered", "run")
    assert rows["A1"].reason == "a wide band is breached"
    assert (rows["A2"].decision, rows["A2"].reason) == (
        "not_due",
        "below the value threshold: in the quiet period after the last rebalance",
    )
    assert rows["A2"].next_check_at == datetime(2026, 11, 25, 14, 30, tzinfo=ET)  # every window


def _proposal_of(desk: Desk, run_id: RunId | None):  # type: ignore[no-untyped-def]
    with desk.store.unit_of_work(actor="test", reason="read") as uow:
        run = uow.runs.get(run_id) if run_id else None
        assert run is not None and run.proposal is not None
        return uow.proposals.get(run.proposal)


def test_a_tiered_accounts_scheduled_run_trades_its_own_policy_and_bands(desk: Desk) -> None:
    """A1's policy is tiered with its own 10 % relative band: the run the scheduler starts for it
    trades `tiered` with that band, as `rebal run --policy tiered --band-rel 10` would; A2's
    threshold policy sets nothing of its own, so its run trades the scheduler's configured
    policy."""
    set_policies(
        desk,
        InvestmentPolicy(
            account=AccountId("A1"), trigger=TriggerKind.TIERED, band_rel=Decimal("0.1")
        ),
        InvestmentPolicy(account=AccountId("A2"), trigger=TriggerKind.THRESHOLD),
    )
    rows = by_account(run_tick(desk, WINDOW))
    assert rows["A1"].decision == rows["A2"].decision == "run"
    tiered = _proposal_of(desk, rows["A1"].run_id)
    assert json.loads(tiered.config) == {"policy": "tiered", "band_rel": 10.0}
    assert json.loads(_proposal_of(desk, rows["A2"].run_id).config) == {}
    # the same orders as a run of A1 asked for with that policy and band (the next day's key)
    bands = BandSpec(band_abs=None, band_rel=0.1)
    request = RunRequest(
        scope=ScopeKind.ACCOUNT,
        name="A1",
        type=RunType.REBALANCE,
        as_of=WINDOW + timedelta(days=1),
        max_price_age=SETTINGS.max_price_age,
    )
    planner = CorePlanner(RunConfig(policy="tiered", bands=bands))
    asked, _ = start_run(desk.store, request, planner, actor="test")
    expected = _proposal_of(desk, asked.id)
    assert tiered.orders and tiered.orders == expected.orders
    rails = CorePlanner(RunConfig())
    assert rails.for_policy(PolicyTerms(False, None, None, None, None)).config == RunConfig()
