"""Two processes that start or resume the same run at the same time send its orders once: the
run is claimed for its trade (an advisory lock on PostgreSQL, a file lock on SQLite), a second
claimant waits, and a claim dies with its process. On both backends, each party on connections
of its own."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable

import pytest
from rundesk import Desk, attach, make_desk, small_book, submits

from rebal.adapters.storage.database import create_engine
from rebal.adapters.storage.unit_of_work import SqlStore
from rebal.clock import SystemClock
from rebal.domain.order import Order, OrderState
from rebal.domain.run import Run, RunEvent, RunState


def _together(*work: Callable[[], Run]) -> list[Run]:
    """Run each callable in a thread of its own, released at the same instant."""
    gate = threading.Barrier(len(work))
    results: list[Run | BaseException] = [RuntimeError("did not end")] * len(work)

    def party(k: int) -> None:
        gate.wait()
        try:
            results[k] = work[k]()
        except BaseException as exc:  # reported below
            results[k] = exc

    threads = [threading.Thread(target=party, args=(k,)) for k in range(len(work))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results  # type: ignore[return-value]


def _orders(desk: Desk, run: Run) -> list[Order]:
    with desk.store.unit_of_work(actor="test", reason="read") as uow:
        return list(uow.orders.for_run(run.id))


def _events(desk: Desk, run: Run) -> list[RunEvent]:
    with desk.store.unit_of_work(actor="test", reason="read") as uow:
        return list(uow.runs.events(run.id))


def _start_and_trade(desk: Desk) -> Callable[[], Run]:
    def work() -> Run:
        run, _ = desk.start(policy="full")
        return desk.execute(run)

    return work


def test_two_starting_the_same_run_at_once_send_its_orders_once(database_url: str) -> None:
    book = small_book(3)
    first = make_desk(database_url, book)
    second = attach(database_url, book)
    try:
        a, b = _together(_start_and_trade(first), _start_and_trade(second))
        assert a.id == b.id and a.state is b.state is RunState.COMPLETED
        orders = _orders(first, a)
        assert len(orders) == 6 and all(o.state is OrderState.FILLED for o in orders)
        assert submits(first) == {o.client_order_id: 1 for o in orders}
        begun = [e.reason for e in _events(first, a) if e.reason.startswith(("start", "resum"))]
        assert begun == ["started"]  # one trade, nothing resumed
    finally:
        first.store.engine.dispose()
        second.store.engine.dispose()


def test_two_resuming_the_same_run_at_once_send_its_orders_once(database_url: str) -> None:
    """A run left in progress with its sells sent (a crash), resumed by two at once."""
    book = small_book(3)
    first = make_desk(database_url, book)
    second = attach(database_url, book)
    try:
        run, _ = first.start(policy="full")
        with first.store.unit_of_work(actor="test", reason="a crash mid-run") as uow:
            uow.runs.transition(run.id, RunState.IN_PROGRESS, first.clock.now(), "started")
            uow.commit()
        a, b = _together(lambda: first.execute(run), lambda: second.execute(run))
        assert a.state is b.state is RunState.COMPLETED
        orders = _orders(first, a)
        assert len(orders) == 6
        assert submits(first) == {o.client_order_id: 1 for o in orders}
        resumed = [e for e in _events(first, a) if e.reason.startswith("resumed")]
        assert len(resumed) == 1  # the second found it ended and did nothing
    finally:
        first.store.engine.dispose()
        second.store.engine.dispose()


def test_a_second_claimant_waits_for_the_first(database_url: str) -> None:
    # two stores, each on an engine of its own (a claim needs no schema)
    one = SqlStore(create_engine(database_url), SystemClock())
    two = SqlStore(create_engine(database_url), SystemClock())
    got = threading.Event()

    def later() -> None:
        with two.claim("run R1"):
            got.set()

    try:
        with one.claim("run R1"):
            waiter = threading.Thread(target=later)
            waiter.start()
            assert not got.wait(0.5)  # held: the second waits
            with two.claim("run R2"):  # another name is free
                pass
        assert got.wait(10)
        waiter.join()
    finally:
        one.close()
        two.close()


HOLD = """
import sys, time
from rebal.adapters.storage.database import create_engine
from rebal.adapters.storage.unit_of_work import SqlStore
from rebal.clock import SystemClock
store = SqlStore(create_engine(sys.argv[1]), SystemClock())
with store.claim("run R1"):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_claim_dies_with_its_process(database_url: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, database_url], stdout=subprocess.PIPE, text=True
    )
    store = SqlStore(create_engine(database_url), SystemClock())
    got = threading.Event()

    def take() -> None:
        with store.claim("run R1"):
            got.set()

    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        taker = threading.Thread(target=take)
        taker.start()
        assert not got.wait(0.5)
        holder.kill()  # SIGKILL: no chance to let go
        holder.wait(timeout=30)
        assert got.wait(30)
        taker.join()
    finally:
        if holder.poll() is None:
            holder.kill()
        store.close()


def test_a_claim_needs_a_name(desk: Desk) -> None:
    with pytest.raises(ValueError, match="needs a name"), desk.store.claim(""):
        pass


def test_the_memory_store_claims_per_name_too() -> None:
    from rundesk import START

    from rebal.adapters.memory.clock import SimulatedClock
    from rebal.adapters.memory.storage import InMemoryStore

    store = InMemoryStore(SimulatedClock(START))
    got = threading.Event()

    def later() -> None:
        with store.claim("run R1"):
            got.set()

    with store.claim("run R1"):
        waiter = threading.Thread(target=later)
        waiter.start()
        assert not got.wait(0.3)
        with store.claim("run R2"):
            pass
    assert got.wait(10)
    waiter.join()
