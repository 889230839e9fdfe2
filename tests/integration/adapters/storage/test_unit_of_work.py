"""A unit of work is one transaction: all of it or nothing, by an actor for a reason, audited;
two that take the same lock (or start the same run) one after the other. On every
implementation."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest

from rebal.adapters.memory.clock import SimulatedClock
from rebal.domain.account import Target
from rebal.domain.audit import AuditAction, Entity
from rebal.domain.ids import ModelId, RunId, Symbol
from rebal.domain.run import Run, RunKey, RunState, RunType, ScopeKind
from rebal.ports.storage import Store, StoreError

ALL_CASH = (Target(symbol=Symbol("CASH"), weight=Decimal(1)),)


def _models(store: Store) -> list[str]:
    with store.unit_of_work(actor="t", reason="look") as uow:
        return [v.model for v in uow.models.current()]


def test_changes_are_kept_only_when_committed(store: Store) -> None:
    with store.unit_of_work(actor="t", reason="r") as uow:
        uow.models.set_targets(ModelId("dropped"), ALL_CASH)
        assert [v.model for v in uow.models.current()] == ["dropped"]  # seen inside
    assert _models(store) == []
    with store.unit_of_work(actor="t", reason="r") as uow:
        uow.models.set_targets(ModelId("rolled"), ALL_CASH)
        uow.rollback()
    with pytest.raises(RuntimeError), store.unit_of_work(actor="t", reason="r") as uow:
        uow.models.set_targets(ModelId("failed"), ALL_CASH)
        raise RuntimeError("a crash half-way")
    assert _models(store) == []
    with store.unit_of_work(actor="t", reason="r") as uow:
        uow.models.set_targets(ModelId("kept"), ALL_CASH)
        uow.commit()
    assert _models(store) == ["kept"]


def test_a_unit_of_work_is_used_inside_its_block_only(store: Store) -> None:
    uow = store.unit_of_work(actor="t", reason="r")
    with pytest.raises(StoreError, match="with"):
        uow.models.current()
    with uow:
        uow.commit()
        with pytest.raises(StoreError):
            uow.models.current()


def test_every_change_is_audited_with_who_when_and_why(store: Store, clock: SimulatedClock) -> None:
    clock.advance(timedelta(hours=1))
    with store.unit_of_work(actor="alice", reason="new cash model") as uow:
        uow.models.set_targets(ModelId("cash"), ALL_CASH)
        uow.commit()
    with store.unit_of_work(actor="bob", reason="look") as uow:
        [entry] = uow.audit.entries(Entity.MODEL)
        firm_entries = uow.audit.entries(Entity.FIRM)
    assert (entry.actor, entry.reason, entry.at, entry.action, entry.key) == (
        "alice",
        "new cash model",
        clock.now(),
        AuditAction.CREATE,
        "cash/1",
    )
    assert entry.before is None and entry.after is not None
    assert '"weight":"1"' in entry.after and '"version":1' in entry.after
    assert [e.actor for e in firm_entries] == ["setup"]


def _after_the_holder(store: Store) -> list[str]:
    """Two units of work ask for one lock at once: the second goes on only once the first
    has committed, and sees what it wrote. Returns the order of events."""
    order: list[str] = []
    holding = threading.Event()

    def first() -> None:
        with store.unit_of_work(actor="one", reason="r") as uow:
            uow.lock("run:r1")
            holding.set()
            time.sleep(0.3)  # let the second one try meanwhile
            uow.models.set_targets(ModelId("first"), ALL_CASH)
            order.append("first commits")
            uow.commit()

    thread = threading.Thread(target=first)
    thread.start()
    assert holding.wait(10)
    with store.unit_of_work(actor="two", reason="r") as uow:
        uow.lock("run:r1")
        order.append("second holds the lock")
        order.append("second sees " + ",".join(v.model for v in uow.models.current()))
    thread.join()
    return order


def test_a_named_lock_makes_the_second_unit_of_work_wait(store: Store) -> None:
    assert _after_the_holder(store) == [
        "first commits",
        "second holds the lock",
        "second sees first",
    ]


def test_two_starts_of_one_run_at_once_create_it_once(store: Store, clock: SimulatedClock) -> None:
    key = RunKey(ScopeKind.BOOK, "", clock.now().date(), RunType.REBALANCE, 0)
    results: list[tuple[str, bool]] = []
    barrier = threading.Barrier(2)

    def start(run_id: str) -> None:
        barrier.wait()
        with store.unit_of_work(actor=run_id, reason="start") as uow:
            run, created = uow.runs.start(
                Run(
                    id=RunId(run_id),
                    key=key,
                    state=RunState.QUEUED,
                    created_at=clock.now(),
                    updated_at=clock.now(),
                ),
                "asked",
            )
            uow.commit()
        results.append((run.id, created))

    threads = [threading.Thread(target=start, args=(name,)) for name in ("ra", "rb")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [winner] = [run_id for run_id, created in results if created]
    assert sorted(results) == sorted([(winner, True), (winner, False)])
    with store.unit_of_work(actor="t", reason="r") as uow:
        assert [r.id for r in uow.runs.list()] == [winner]
        assert len(uow.runs.events(RunId(winner))) == 1
