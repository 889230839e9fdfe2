"""`rebal reconcile` as a user runs it, on SQLite and PostgreSQL: a book imported into the store,
its accounts opened at the simulated broker from the book, then traded at the broker only, so
the two records part by exactly what the fills moved; and every way of not being able to
reconcile refused with one message."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rebal.adapters.brokers.simulated import SimulatedBroker
from rebal.adapters.calendars.exchange import ExchangeCalendar
from rebal.adapters.memory.clock import SimulatedClock
from rebal.adapters.memory.prices import InMemoryPrices
from rebal.adapters.storage.unit_of_work import SqlStore
from rebal.cli.main import app
from rebal.domain.account import Price
from rebal.domain.ids import AccountId, ClientOrderId, Symbol
from rebal.domain.money import Quantity
from rebal.domain.order import Order, OrderType, Side, TimeInForce
from rebal.ports.broker import UnknownAccount
from rebal.services.broker_openings import open_from_book
from rebal.services.reconcile import book_holdings
from rebal.testkit import write_book_files

runner = CliRunner()
#: Tuesday 2026-11-24, 15:00 UTC (10:00 in New York): the market is open.
AT = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
BOOK = {
    "models": "model,symbol,weight\nbal,VTI,60\nbal,BND,40\n",
    "accounts": "account,model,cash\nA1,bal,100.00\nA2,bal,50.00\nA3,bal,0\n",
    "holdings": "account,symbol,quantity\nA1,VTI,10\nA1,BND,2.5\nA2,BND,1.123456\n",
    "prices": "symbol,price\nVTI,250.00\nBND,72.50\n",
}


def _invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


@pytest.fixture
def stored(database_url: str, tmp_path: Path) -> str:
    """The store at ``database_url`` holding :data:`BOOK`."""
    assert _invoke("db", "init", "--db", database_url).exit_code == 0
    files = write_book_files(tmp_path, BOOK)
    assert _invoke("db", "import", *files, "--db", database_url).exit_code == 0
    return database_url


@pytest.fixture
def broker(stored: str) -> Iterator[SimulatedBroker]:
    """The simulated broker on the same database, A1 and A2 opened from the book (A3 not)."""
    store = SqlStore.open(stored, SimulatedClock(AT))
    with store.unit_of_work(actor="t", reason="opening") as uow:
        book = book_holdings(uow)
    store.close()
    prices = InMemoryPrices(
        Price(symbol=Symbol(s), price=Decimal(p), at=AT - timedelta(days=1))
        for s, p in (("VTI", "250.00"), ("BND", "72.50"))
    )
    sim = SimulatedBroker(
        stored,
        clock=SimulatedClock(AT),
        prices=prices,
        calendar=ExchangeCalendar.around(AT, days_before=30, days_after=30),
    )
    assert open_from_book(sim, {a: book[a] for a in ("A1", "A2")}) == {"A1", "A2"}
    yield sim
    sim.close()


def _sell(sim: SimulatedBroker, account: str, symbol: str, quantity: str) -> None:
    sim.submit(
        Order(
            client_order_id=ClientOrderId(f"r1-{account}-{symbol}"),
            account=AccountId(account),
            symbol=Symbol(symbol),
            side=Side.SELL,
            quantity=Quantity(Decimal(quantity)),
            type=OrderType.MARKET,
            time_in_force=TimeInForce.DAY,
        )
    )


def _json(*args: str, code: int) -> Any:
    result = _invoke("reconcile", "--format", "json", *args)
    assert result.exit_code == code, result.output
    return json.loads(result.stdout, parse_float=Decimal)


def test_a_book_opened_at_the_broker_reconciles(broker: SimulatedBroker, stored: str) -> None:
    result = _invoke("reconcile", "--db", stored)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("2 account(s) reconcile: cash and every position agree")
    assert "1 book account(s) not opened at the broker" in result.stdout
    doc = _json("--db", stored, code=0)
    assert (doc["reconciled"], doc["accounts_compared"], doc["differences"]) == (True, 2, 0)
    assert doc["unopened"] == ["A3"]
    assert doc["accounts"][1] == {
        "account": "A2",
        "reconciled": True,
        "book_cash": Decimal("50.00"),
        "broker_cash": Decimal("50.00"),
        "differences": [],
    }


def test_a_trade_at_the_broker_only_is_every_difference_exactly(
    broker: SimulatedBroker, stored: str
) -> None:
    _sell(broker, "A1", "VTI", "4")  # 4 x 250.00 = 1000.00 more cash, 6 VTI left
    _sell(broker, "A2", "BND", "1.123456")  # all of it: 1.123456 x 72.50 = 81.45
    doc = _json("--db", stored, code=1)
    assert (doc["reconciled"], doc["accounts_differing"], doc["differences"]) == (False, 2, 4)
    a1, a2 = doc["accounts"]
    assert a1["differences"] == [
        {
            "kind": "cash",
            "symbol": None,
            "book": Decimal("100.00"),
            "broker": Decimal("1100.00"),
            "difference": Decimal("1000.00"),
        },
        {"kind": "quantity", "symbol": "VTI", "book": 10, "broker": 6, "difference": -4},
    ]
    assert a2["differences"] == [
        {
            "kind": "cash",
            "symbol": None,
            "book": Decimal("50.00"),
            "broker": Decimal("131.45"),
            "difference": Decimal("81.45"),
        },
        {
            "kind": "missing_at_broker",
            "symbol": "BND",
            "book": Decimal("1.123456"),
            "broker": None,
            "difference": Decimal("-1.123456"),
        },
    ]
    # Shares are written as the number they are, without the store's trailing zeros.
    text = _invoke("reconcile", "--format", "json", "--db", stored).stdout
    assert '"symbol": "VTI", "book": 10, "broker": 6, "difference": -4}' in text
    table = _invoke("reconcile", "--db", stored)
    assert table.exit_code == 1
    assert "position missing at the broker" in table.stdout
    assert "2 of 2 account(s) do not reconcile (4 difference(s))" in table.stdout
    # One account: only its differences.
    assert _json("--db", stored, "--account", "A1", code=1)["differences"] == 2


def test_one_account_and_an_account_not_at_the_broker(broker: SimulatedBroker, stored: str) -> None:
    assert _json("--db", stored, "--account", "A2", code=0)["accounts_compared"] == 1
    (a3,) = _json("--db", stored, "--account", "A3", code=1)["accounts"]
    assert a3["differences"] == [
        {
            "kind": "account_missing_at_broker",
            "symbol": None,
            "book": None,
            "broker": None,
            "difference": None,
        }
    ]


def _error(*args: str) -> str:
    result = _invoke("reconcile", *args)
    assert result.exit_code == 1
    assert result.stdout == ""
    return " ".join(result.stderr.split())


def test_what_cannot_be_reconciled_is_one_message(
    broker: SimulatedBroker, stored: str, tmp_path: Path
) -> None:
    assert "unknown account NOPE" in _error("--db", stored, "--account", "NOPE")
    bad = tmp_path / "broker.toml"
    bad.write_text("slippage = 5\n")
    assert "slippage" in _error("--db", stored, "--broker-config", str(bad))
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    assert "run `rebal db init` first" in _error("--db", missing)


def test_a_store_without_a_broker_ledger_or_with_an_empty_one(stored: str) -> None:
    assert "holds no simulated broker ledger" in _error("--db", stored)
    SimulatedBroker(
        stored,
        clock=SimulatedClock(AT),
        prices=InMemoryPrices(),
        calendar=ExchangeCalendar.around(AT),
    ).close()
    assert "ledger is empty" in _error("--db", stored)


def test_broker_open_brings_the_book_to_the_broker_once(stored: str) -> None:
    at = ("--as-of", "2026-11-24T15:00:00Z")
    one = _invoke("broker", "open", "--db", stored, "--account", "A2", *at)
    assert one.exit_code == 0, one.output
    assert one.stdout == (
        "opened 1 account(s) at the simulated broker with the book's cash and shares; "
        "0 already open\n"
    )
    assert _json("--db", stored, code=0)["unopened"] == ["A1", "A3"]
    every = _invoke("broker", "open", "--db", stored, *at)
    assert "opened 2 account(s)" in every.stdout and "1 already open" in every.stdout
    doc = _json("--db", stored, code=0)
    assert (doc["accounts_compared"], doc["unopened"]) == (3, [])
    again = _invoke("broker", "open", "--db", stored, *at)
    assert "opened 0 account(s)" in again.stdout and "3 already open" in again.stdout
    naive = _invoke("broker", "open", "--db", stored, "--as-of", "2026-11-24T15:00")
    assert naive.exit_code == 1 and "has no time zone" in naive.stderr
    unknown = _invoke("broker", "open", "--db", stored, "--account", "NOPE", *at)
    assert unknown.exit_code == 1 and "unknown account NOPE" in unknown.stderr


def test_broker_open_leaves_an_overdrawn_account_out_and_names_it(
    database_url: str, tmp_path: Path
) -> None:
    assert _invoke("db", "init", "--db", database_url).exit_code == 0
    book = BOOK | {"accounts": "account,model,cash\nA1,bal,100.00\nA2,bal,-5.00\nA3,bal,0\n"}
    files = write_book_files(tmp_path, book)
    assert _invoke("db", "import", *files, "--db", database_url).exit_code == 0
    result = _invoke("broker", "open", "--db", database_url)
    assert result.exit_code == 0, result.output
    assert "opened 2 account(s)" in result.stdout
    assert "not opened, negative cash" in result.stderr and "A2" in result.stderr
    assert _json("--db", database_url, code=0)["unopened"] == ["A2"]
    only = _invoke("broker", "open", "--db", database_url, "--account", "A2")
    assert only.exit_code == 1 and "negative cash (-5.00)" in only.stderr


def test_the_simulated_broker_reports_many_accounts_as_one_by_one(broker: SimulatedBroker) -> None:
    _sell(broker, "A1", "VTI", "4")
    _sell(broker, "A2", "BND", "1.123456")
    accounts = [AccountId("A2"), AccountId("A1")]
    assert broker.holdings(accounts) == {a: (broker.cash(a), broker.positions(a)) for a in accounts}
    assert broker.holdings([AccountId("A2")])[AccountId("A2")] == (Decimal("131.45"), {})
    with pytest.raises(UnknownAccount, match="no account NOPE"):
        broker.holdings([AccountId("A1"), AccountId("NOPE")])
