"""Deposits at the simulated custodian: cash credited once per reference, recorded as a
transfer in its ledger; an account it does not keep is refused with nothing credited; a ledger
made before deposits existed is migrated to them. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from simmarket import ACCOUNT, Sim, SimFactory, d, ledger_rows

from rebal.adapters.brokers.simulated import tables as t
from rebal.adapters.brokers.simulated.schema import (
    MIGRATIONS,
    connect,
    migrate,
    migration_options,
    revision,
)
from rebal.domain.ids import AccountId
from rebal.domain.money import Money
from rebal.ports.broker import Deposit, TakesDeposits, UnknownAccount


def _deposit(reference: str, amount: str, account: AccountId = ACCOUNT) -> Deposit:
    return Deposit(reference=reference, account=account, amount=Money(d(amount)))


def test_a_deposit_is_credited_once_per_reference_and_recorded(sim: Sim) -> None:
    assert isinstance(sim.broker, TakesDeposits)
    sim.broker.open_account(ACCOUNT, Money(d("100.00")), {})
    assert sim.broker.deposit([_deposit("F1", "5000.00")]) == frozenset({"F1"})
    # asked again (a lost answer, a resumed run): F1 is not credited twice, F2 is new
    again = sim.broker.deposit([_deposit("F1", "5000.00"), _deposit("F2", "0.01")])
    assert again == frozenset({"F2"})
    assert sim.broker.cash(ACCOUNT) == d("5100.01")
    assert sim.broker.buying_power(ACCOUNT) == d("5100.01")
    rows = ledger_rows(sim, t.transfers, "account", "symbol", "amount", "reference")
    assert rows == [
        ("ACC-1", None, d("100.00"), None),
        ("ACC-1", None, d("5000.00"), "F1"),
        ("ACC-1", None, d("0.01"), "F2"),
    ]


def test_a_deposit_to_an_account_not_kept_credits_nothing(sim: Sim) -> None:
    sim.broker.open_account(ACCOUNT, Money(d("100.00")), {})
    with pytest.raises(UnknownAccount, match="NOBODY"):
        sim.broker.deposit([_deposit("F1", "10.00"), _deposit("F2", "10.00", AccountId("NOBODY"))])
    assert sim.broker.cash(ACCOUNT) == d("100.00")
    assert ledger_rows(sim, t.transfers, "reference") == [(None,)]


@pytest.mark.parametrize("amount", ["0.00", "-5.00", "1.001"])
def test_a_deposit_is_a_positive_amount_of_cents(amount: str) -> None:
    with pytest.raises(ValueError, match="deposit F"):
        _deposit("F", amount)


def test_a_ledger_from_before_deposits_is_migrated_to_them(database_url: str) -> None:
    engine = connect(database_url)
    try:
        migrate(engine)
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0001")
            assert "reference" not in {
                c["name"] for c in sa.inspect(conn).get_columns(t.transfers.name)
            }
        migrate(engine)
        with engine.connect() as conn:
            assert revision(conn) == "0003"  # the head: 0003 (block legs) follows
            context = MigrationContext.configure(conn, opts=migration_options())
            assert compare_metadata(context, t.metadata) == []
    finally:
        engine.dispose()


def test_two_processes_depositing_one_reference_credit_it_once(make_sim: SimFactory) -> None:
    first, second = make_sim(), make_sim()
    first.broker.open_account(ACCOUNT, Money(d("100.00")), {})
    credited: list[frozenset[str]] = []
    start = threading.Barrier(2)

    def deposit(sim: Sim) -> None:
        start.wait()
        credited.append(sim.broker.deposit([_deposit("F1", "50.00")]))

    threads = [threading.Thread(target=deposit, args=(s,)) for s in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(credited, key=len) == [frozenset(), frozenset({"F1"})]
    assert first.broker.cash(ACCOUNT) == d("150.00")
