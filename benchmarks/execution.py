"""Throughput of a batch run through the store and the simulated broker, against a bulk insert.

Builds a book of ``--accounts`` (10,000) accounts of the sample book's shape (the shipped sample's
tradeable accounts, their models, holdings and prices, repeated under new ids) in a SQLite file,
then times one `rebalance` run of the whole book (``--policy full``) from its start (the
proposal, its intents stored) to its end (every order filled, the book moved by the fills, the
end check reconciling every account with the broker), through the simulated broker with zero
latency on the same database, as `rebal run --all` does. Then, in the same process and the same
database, the reference: one transaction inserting as many order rows and fill rows as the run
made, with the store's own insert (``UnitOfWork.insert``, an executemany), the least any run that
records its orders and fills must write. The run must end ``completed`` with the book
reconciling exactly, or the benchmark fails.

The numba kernels are loaded (compiled when not cached) before the clock starts, so the figure
is the run's, not the process's start.

What bounds it: a run writes each order several times (its intent, ``submitted`` before it is
sent, the broker's answer), the broker writes its own ledger (the order, its fill, the request,
the account's cash and positions), and each fill moves the account's cash and lots, every change
with its audit entry: about ten rows written per order where the reference writes two, plus
reading them back. Orders go out in blocks (:data:`rebal.services.execution.BLOCK`): a block's
intents are committed ``submitted`` in one transaction, sent in one request (the broker stores
the request's orders with one insert), and their answers and fills stored in one transaction, so
the commits (each a write of the WAL) are per block, not per order, and the crash safety of one
order holds for a block (scripts/crash_stress.py). Pre-trade compliance asks the broker once per
leg for every account's cash, buying power, positions and orders
(:class:`rebal.ports.broker.ReportsAccounts`), not four times per account, and the objects the
process holds when the run starts are kept out of the collector's full collections while it
lasts (``execute_run``; they cost a sixth of the time at 2,000 accounts). What is left is
per-row Python work, spread thin: each order is read back into its domain record about a dozen
times (by each leg, the compliance checks, the end check and the run's notifications), every
change's audit entry is the canonical JSON of its record before and after (about six entries
per order, and an account's whole list of lots each time a fill moves it), the lots of every
account traded are rewritten per block. No single read or write is more than a fifth of the
run's time (cProfile and per-step timers, 2,000 accounts; at 300 accounts no function has more
than 6% of it by itself). The audit JSON's encoder finds how to say each type once (not an
isinstance chain per value), SQLite's scaled decimals are read by one call per value, and the
notifications of a run's end and of its end check go to the outbox in one executemany: about 5%
off the run, within the shared machine's noise.

Measured 2026-12-03 on the shared 2-CPU machine under a load average of about 9: before the
blocks (one commit per order step) 200 accounts ran at 7 orders/s, ratio 1,619; with them 1,000
accounts ran at 42-68 orders/s, ratio 44-55; 10,000 accounts did not finish within 25 minutes
(compliance asked the broker four times per account and scanned every order of the leg for
each account). Measured 2026-12-04 on the same machine under a load average of 9-10 (wall time
there is about three times the CPU time, so the ratio moves with the load), this benchmark run
on the source named, back to back:

    source                      accounts  orders  orders/s  bulk insert   ratio
    main, 6ea1791 (two runs)       1,000   1,432    91-104  0.16-0.18 s   76-99
    0ed523b (two runs)             1,000   1,432   205-232  0.15-0.17 s   35-48
    0ed523b                       10,000  14,182       154       2.25 s    40.8
    0ed523b, PostgreSQL (--db)     1,000   1,432       140       0.25 s    40.7

Then on 2026-12-04 under a load average of about 1.8, three runs each, alternating:

    source                      accounts  orders  orders/s  bulk insert       ratio
    main, f35cefc                  1,000   1,432   626-679  0.049-0.055 s   38-47
    audit JSON, decimal reads,     1,000   1,432   656-734  0.057-0.060 s   32-39
      outbox in one insert

The aim of 10 is not met: the run is about 40 times the reference insert, at 1,000 and at
10,000 accounts (docs/runs.md).

Run: ``.venv/bin/python benchmarks/execution.py [--accounts N]``. Prints the run's orders per
second; last line ``ratio_vs_bulk_insert=<run time / insert time>`` (aim: 10 or less on SQLite).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

import rebal.versioned_cache  # noqa: F401 - first: numba's cache for this source version
from rebal.adapters.brokers.simulated import SimulatedBroker
from rebal.adapters.calendars.exchange import ExchangeCalendar
from rebal.adapters.memory.clock import SimulatedClock
from rebal.adapters.memory.prices import InMemoryPrices
from rebal.adapters.storage import tables as t
from rebal.adapters.storage.database import create_engine
from rebal.adapters.storage.migrate import upgrade
from rebal.adapters.storage.unit_of_work import SqlStore
from rebal.core.engine import RunConfig
from rebal.domain.book import BookSnapshot
from rebal.domain.ids import AccountId
from rebal.domain.run import RunState, RunType, ScopeKind
from rebal.io.book_records import book_snapshot
from rebal.io.csvfiles import read_tables
from rebal.proposing import CorePlanner
from rebal.services.book import import_book
from rebal.services.compliance import ComplianceConfig, RunCompliance
from rebal.services.execution import ExecutionSettings, execute_run
from rebal.services.reconcile import book_holdings, reconcile
from rebal.services.runs import RunRequest, show_run, start_run
from rebal.warmup import compile_core

#: Tuesday 2026-11-24, 10:00 in New York; the book is priced an hour before.
START = datetime(2026, 11, 24, 10, 0, tzinfo=ZoneInfo("America/New_York"))


def sample_shaped(n: int) -> BookSnapshot:
    """``n`` accounts repeating the sample book's tradeable ones (a model, cash not negative,
    every holding priced, nothing restricted or to liquidate), with their holdings and the
    sample's models and prices."""
    root = resources.files("rebal") / "data" / "sample"
    tables = read_tables(
        *(Path(str(root / f"{name}.csv")) for name in ("models", "accounts", "holdings", "prices"))
    )
    sample = book_snapshot(tables, START - timedelta(hours=1))
    priced = {p.symbol for p in sample.prices}
    held: dict[AccountId, list] = {}
    for h in sample.holdings:
        held.setdefault(h.account, []).append(h)
    usable = [
        a
        for a in sample.accounts
        if a.model is not None
        and a.can_trade
        and a.cash >= 0
        and not a.pending_cash
        and not a.restricted
        and not a.liquidate
        and held.get(a.id)
        and all(h.symbol in priced for h in held[a.id])
    ]
    accounts, holdings = [], []
    for k in range(n):
        base = usable[k % len(usable)]
        new = AccountId(f"B{k:06d}")
        accounts.append(replace(base, id=new, household=None))
        holdings += [replace(h, account=new) for h in held[base.id]]
    return BookSnapshot(
        models=sample.models,
        accounts=tuple(accounts),
        holdings=tuple(holdings),
        prices=sample.prices,
    )


def bulk_insert(store: SqlStore, orders: int, fills: int) -> float:
    """Seconds to insert ``orders`` order rows and ``fills`` fill rows in one transaction (then
    removed again), with the store's own bulk insert."""
    with store.unit_of_work(actor="bench", reason="read") as uow:
        account = uow.accounts.list()[0].id
        run = uow.runs.list()[0].id
        now = uow.now
    order_rows = [
        {
            "firm_id": "default",
            "client_order_id": f"BULK-{k}",
            "run_id": run,
            "account_id": account,
            "symbol": "VTI",
            "side": "buy",
            "quantity": Decimal("1.5"),
            "notional": None,
            "type": "market",
            "limit_price": None,
            "time_in_force": "day",
            "extended_hours": False,
            "parent": None,
            "created_at": now,
            "state": "filled",
            "filled_quantity": Decimal("1.5"),
            "filled_notional": Decimal("375.00"),
            "broker_order_id": f"BULK-B{k}",
            "reason": "proposed",
            "submitted_at": now,
            "updated_at": now,
        }
        for k in range(orders)
    ]
    fill_rows = [
        {
            "firm_id": "default",
            "id": f"BULK-F{k}",
            "client_order_id": f"BULK-{k % orders}",
            "account_id": account,
            "symbol": "VTI",
            "side": "buy",
            "quantity": Decimal("1.5"),
            "price": Decimal("250.00"),
            "at": now,
            "recorded_at": now,
        }
        for k in range(fills)
    ]
    began = time.perf_counter()
    with store.unit_of_work(actor="bench", reason="bulk insert") as uow:
        uow.insert(t.orders, order_rows)
        uow.insert(t.fills, fill_rows)
        uow.commit()
    seconds = time.perf_counter() - began
    with store.engine.begin() as conn:
        conn.execute(sa.delete(t.fills).where(t.fills.c.id.like("BULK-%")))
        conn.execute(sa.delete(t.orders).where(t.orders.c.client_order_id.like("BULK-%")))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--db", help="a database URL (default: a SQLite file in a temp dir)")
    args = parser.parse_args()
    book = sample_shaped(args.accounts)
    compile_core()  # the kernels loaded (or compiled) before the clock starts
    with tempfile.TemporaryDirectory(prefix="rebal-bench-") as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = create_engine(url)
        upgrade(engine)
        clock = SimulatedClock(START - timedelta(minutes=30))
        store = SqlStore(engine, clock)
        with store.unit_of_work(actor="bench", reason="import") as uow:
            import_book(uow, book)
            uow.commit()
        clock.advance(timedelta(minutes=30))
        prices = InMemoryPrices(book.prices)
        calendar = ExchangeCalendar.around(START, days_before=10, days_after=30)
        broker = SimulatedBroker(engine, clock=clock, prices=prices, calendar=calendar)
        compliance = RunCompliance(
            calendar=calendar,
            prices=prices,
            config=ComplianceConfig(),
            default_price_age=timedelta(days=1),
        )
        request = RunRequest(scope=ScopeKind.BOOK, name="", type=RunType.REBALANCE, as_of=START)
        began = time.perf_counter()
        run, _ = start_run(store, request, CorePlanner(RunConfig(policy="full")), actor="bench")
        done = execute_run(
            store,
            broker,
            run.id,
            clock=clock,
            actor="bench",
            settings=ExecutionSettings(),
            compliance=compliance,
        )
        run_seconds = time.perf_counter() - began
        view = show_run(store, run.id, actor="bench")
        if done.state is not RunState.COMPLETED:
            raise SystemExit(f"the run ended {done.state}: {done.reason[:500]}")
        with store.unit_of_work(actor="bench", reason="reconcile") as uow:
            held = book_holdings(uow)
        result = reconcile(held, broker)
        if not result.reconciled:
            raise SystemExit(f"the book does not reconcile: {result.differences[:5]}")
        with engine.connect() as conn:
            fills = conn.execute(
                sa.select(sa.func.count())
                .select_from(t.fills)
                .where(
                    t.fills.c.client_order_id.in_([o.client_order_id for o in view.orders])
                    if len(view.orders) < 30_000
                    else sa.true()
                )
            ).scalar_one()
        orders = len(view.orders)
        insert_seconds = bulk_insert(store, orders, fills)
        engine.dispose()
    print(f"accounts: {args.accounts:,}; orders: {orders:,}; fills: {fills:,}")
    print(f"run (propose, store, trade, reconcile): {run_seconds:.2f} s")
    print(f"orders per second: {orders / run_seconds:,.0f}")
    print(f"bulk insert of {orders:,} orders and {fills:,} fills: {insert_seconds:.3f} s")
    print(f"ratio_vs_bulk_insert={run_seconds / insert_seconds:.1f}")


if __name__ == "__main__":
    main()
