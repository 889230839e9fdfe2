"""The simulated broker's own ledger: opened accounts, its tables beside rebal's, the same seed
giving the same ledger, and two processes on one ledger never spending anything twice."""

from __future__ import annotations

import contextlib
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from simmarket import ACCOUNT, Sim, SimFactory, d, ledger_rows

from rebal.adapters.brokers.simulated import LedgerMissing, SimulatedLedger
from rebal.adapters.brokers.simulated import tables as t
from rebal.adapters.brokers.simulated.schema import connect, migrate, revision
from rebal.domain.ids import AccountId, ClientOrderId, Symbol
from rebal.domain.money import Money
from rebal.domain.order import OrderState
from rebal.ports.broker import BrokerError, DuplicateOrder

LEDGER_TABLES = (
    t.accounts, t.positions, t.transfers, t.orders, t.fills, t.requests, t.faults, t.block_legs
)  # fmt: skip


def test_opening_an_account_is_a_recorded_transfer_in_done_once(sim: Sim) -> None:
    assert sim.broker.open_account(ACCOUNT, Money(d("1500.25")), {Symbol("VTI"): d("3.5")})
    assert not sim.broker.open_account(ACCOUNT, Money(d("99.00")), {})
    assert sim.broker.cash(ACCOUNT) == d("1500.25")
    assert sim.broker.positions(ACCOUNT) == {Symbol("VTI"): d("3.5")}
    transfers = ledger_rows(sim, t.transfers, "account", "symbol", "quantity", "amount")
    assert transfers == [("ACC-1", None, None, d("1500.25")), ("ACC-1", "VTI", d("3.5"), None)]


@pytest.mark.parametrize(
    ("cash", "held", "problem"),
    [
        ("-1.00", {}, "negative"),
        ("1.001", {}, "cents"),
        ("1.00", {"VTI": "0"}, "not positive"),
        ("1.00", {"VTI": "0.0000000001"}, "9 decimal places"),
    ],
)
def test_an_account_cannot_be_opened_with_impossible_holdings(
    sim: Sim, cash: str, held: dict[str, str], problem: str
) -> None:
    positions = {Symbol(s): d(q) for s, q in held.items()}
    with pytest.raises(ValueError, match=problem):
        sim.broker.open_account(ACCOUNT, Money(d(cash)), positions)  # type: ignore[arg-type]
    assert sim.broker.accounts() == []


def test_the_ledger_lives_in_its_own_tables_beside_rebals(database_url: str) -> None:
    engine = connect(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE accounts (id INTEGER PRIMARY KEY)"))
            conn.execute(sa.text("INSERT INTO accounts VALUES (1)"))
        migrate(engine)
        migrate(engine)  # safe to repeat
        names = set(sa.inspect(engine).get_table_names())
        assert names == {"accounts", "sim_alembic_version"} | {x.name for x in LEDGER_TABLES}
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT id FROM accounts")).scalar_one() == 1
            assert revision(conn) == "0003"
    finally:
        engine.dispose()


def test_a_ledger_of_revision_0002_migrates_to_block_legs(database_url: str) -> None:
    engine = connect(database_url)
    try:
        with engine.begin() as conn:
            t.metadata.create_all(conn, tables=[x for x in LEDGER_TABLES if x is not t.block_legs])
            conn.execute(sa.text("CREATE TABLE sim_alembic_version (version_num VARCHAR(32))"))
            conn.execute(sa.text("INSERT INTO sim_alembic_version VALUES ('0002')"))
        migrate(engine)
        assert t.block_legs.name in sa.inspect(engine).get_table_names()
        with engine.connect() as conn:
            assert revision(conn) == "0003"
    finally:
        engine.dispose()


def test_migrations_started_together_create_the_ledger_once(database_url: str) -> None:
    engines = [connect(database_url) for _ in range(3)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(engines))

    def start(engine: sa.Engine) -> None:
        barrier.wait()
        try:
            migrate(engine)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for e in engines:
        e.dispose()
    assert errors == []


def test_reading_a_database_without_a_ledger_is_a_clear_error(database_url: str) -> None:
    engine = connect(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE book (id INTEGER)"))  # rebal's, say
    with pytest.raises(LedgerMissing, match="holds no simulated broker ledger"):
        SimulatedLedger.existing(database_url)
    assert sa.inspect(engine).get_table_names() == ["book"]  # a read creates nothing
    engine.dispose()


def test_reading_a_missing_sqlite_file_does_not_create_it(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    with pytest.raises(LedgerMissing, match="no database file"):
        SimulatedLedger.existing(f"sqlite:///{path}")
    assert not path.exists()


def test_a_new_process_on_the_ledger_carries_on_where_the_last_stopped(
    make_sim: SimFactory,
) -> None:
    first = make_sim(latency_seconds=60)
    first.open("0.00", VTI="10")
    placed = first.broker.submit(first.order("sell", "VTI", quantity="1"))
    first.broker.close()
    later = make_sim(start=first.clock.now() + timedelta(minutes=5), latency_seconds=60)
    found = later.broker.order(placed.client_order_id)
    assert found is not None and found.state is OrderState.FILLED
    assert found.updated_at == placed.submitted_at + timedelta(seconds=60)
    assert later.broker.positions(ACCOUNT) == {Symbol("VTI"): 9}


def test_the_ledger_says_when_it_last_moved_so_a_resumed_clock_never_runs_back(
    make_sim: SimFactory,
) -> None:
    sim = make_sim(latency_seconds=10)
    assert sim.broker.ledger.last_activity() is None
    sim.open("0.00", VTI="10")
    assert sim.broker.ledger.last_activity() == sim.clock.now()
    placed = sim.broker.submit(sim.order("sell", "VTI", quantity="1"))
    sim.wait(60)
    sim.broker.orders()
    assert sim.broker.ledger.last_activity() == placed.submitted_at + timedelta(seconds=10)


def _scenario(sim: Sim) -> None:
    """A busy day: three accounts, mixed orders, partial fills, latency, faults."""
    for k in range(3):
        sim.open(f"{5000 + k}.00", account=AccountId(f"A{k}"), VTI="20", BND="40")
    for n in range(30):
        account = AccountId(f"A{n % 3}")
        order = [
            sim.order("sell", "VTI", quantity=f"{1 + n % 4}", account=account),
            sim.order("buy", "BND", notional=f"{100 + 7 * n}.00", account=account),
            sim.order("buy", "VTI", quantity="1", limit="249.00", account=account),
        ][n % 3]
        with contextlib.suppress(BrokerError):
            sim.broker.submit(order)
        sim.wait(17)
        if n == 15:
            sim.quote("VTI", "248.00")
    sim.wait(3600)
    try:
        sim.broker.orders()
    except BrokerError:
        sim.wait(1)
        sim.broker.orders()


BUSY: dict[str, Any] = {
    "latency_seconds": 3,
    "latency_jitter_seconds": 20,
    "slippage_bps": 3,
    "partial_fills": {"probability": 0.5, "max_parts": 4, "interval_seconds": 45},
    "rejections": {"probability": 0.1},
    "faults": {
        "timeout": {"probability": 0.1, "seconds": 5},
        "disconnect": {"probability": 0.1},
        "ack_lost": {"probability": 0.2},
        "duplicate_fill_report": {"probability": 0.2},
        "out_of_order_fills": {"probability": 0.2},
    },
}


def _ledger(sim: Sim) -> dict[str, list[tuple[Any, ...]]]:
    return {table.name: ledger_rows(sim, table) for table in LEDGER_TABLES}


def test_the_same_seed_and_calls_give_the_same_ledger(make_sim: SimFactory, tmp_path: Path) -> None:
    here = make_sim(seed=11, **BUSY)
    there = make_sim(url=f"sqlite:///{tmp_path / 'other.db'}", seed=11, **BUSY)
    elsewhere = make_sim(url=f"sqlite:///{tmp_path / 'third.db'}", seed=12, **BUSY)
    for sim in (here, there, elsewhere):
        _scenario(sim)
    ledger = _ledger(here)
    assert ledger == _ledger(there)  # on both backends, to the cent and the microsecond
    assert ledger != _ledger(elsewhere)
    assert ledger["sim_faults"] and ledger["sim_fills"]


def test_two_processes_on_one_account_never_overdraw_nor_accept_an_id_twice(
    make_sim: SimFactory,
) -> None:
    first, second = make_sim(), make_sim()
    first.open("1000.00")
    barrier = threading.Barrier(2)
    accepted: list[str] = []
    refused: list[str] = []

    def trade(sim: Sim, name: str) -> None:
        barrier.wait()
        for n in range(10):
            for cid in (f"{name}-{n}", f"shared-{n}"):
                order = sim.order("buy", "BND", notional="100.00", cid=cid)
                try:
                    placed = sim.broker.submit(order)
                except DuplicateOrder:
                    refused.append(cid)
                    continue
                (accepted if placed.state is OrderState.FILLED else refused).append(cid)

    threads = [
        threading.Thread(target=trade, args=(s, n)) for s, n in ((first, "a"), (second, "b"))
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(accepted) == 10  # 1000.00 buys ten notional buys of 100.00, never more
    assert first.broker.cash(ACCOUNT) == 0
    ids = [o.client_order_id for o in first.broker.orders(ACCOUNT)]
    assert len(ids) == len(set(ids)) == 30  # a-*, b-*, and each shared-* once
    received = ledger_rows(first, t.requests, "client_order_id", "outcome")
    assert sum(1 for cid, outcome in received if outcome != "duplicate") == 30
    assert all(cid.startswith("shared-") for cid, outcome in received if outcome == "duplicate")
    assert first.broker.order(ClientOrderId("shared-9")) is not None
