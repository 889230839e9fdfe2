"""`rebal broker orders|positions` as a user runs them: the broker's ledger in a table or exact
JSON, one account or all, and clear errors."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from simmarket import ACCOUNT, Sim, SimFactory
from typer.testing import CliRunner

from rebal.cli.main import app
from rebal.domain.ids import AccountId

runner = CliRunner()
OTHER = AccountId("ACC-2")


@pytest.fixture
def traded(make_sim: SimFactory) -> Sim:
    """A ledger with two accounts: a sale, a notional buy, a refused order, a working limit."""
    sim = make_sim(slippage_bps=5)
    sim.open("100.00", VTI="10")
    sim.open("50.00", account=OTHER)
    sim.broker.submit(sim.order("sell", "VTI", quantity="4", cid="r1-sell"))
    sim.broker.submit(sim.order("buy", "BND", notional="1000.00", cid="r1-buy"))
    sim.broker.submit(sim.order("buy", "BND", notional="60.00", cid="r1-big", account=OTHER))
    sim.broker.submit(
        sim.order("buy", "BND", quantity="0.5", limit="10", cid="r1-lim", account=OTHER)
    )
    return sim


def _url(sim: Sim) -> str:
    return sim.broker.engine.url.render_as_string(hide_password=False)


def _json(args: list[str]) -> Any:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout, parse_float=Decimal)


def test_orders_as_exact_json(traded: Sim) -> None:
    doc = _json(["broker", "orders", "--format", "json", "--db", _url(traded)])
    orders = {o["client_order_id"]: o for o in doc["orders"]}
    assert list(orders) == ["r1-sell", "r1-buy", "r1-big", "r1-lim"]
    sell, buy = orders["r1-sell"], orders["r1-buy"]
    # 250.00 less 5 bps is 249.875, rounded down to 249.8750; 4 shares bring 999.50.
    assert (sell["state"], sell["filled_quantity"], sell["filled_avg_price"]) == (
        "filled",
        4,
        Decimal("249.875"),
    )
    assert sell["filled_notional"] == Decimal("999.50")
    assert buy["notional"] == Decimal("1000.00") and buy["quantity"] is None
    # 72.50 plus 5 bps is 72.53625, rounded up to 72.5363; 1000.00 buys 13.786200840... of it.
    assert buy["filled_quantity"] == Decimal("13.78620084")
    assert orders["r1-big"]["state"] == "rejected" and "buying power" in orders["r1-big"]["reason"]
    assert orders["r1-lim"]["limit_price"] == 10 and orders["r1-lim"]["state"] == "accepted"
    assert sell["submitted_at"].endswith("+00:00")


def test_positions_as_exact_json_for_one_account(traded: Sim) -> None:
    doc = _json(
        ["broker", "positions", "--format", "json", "--account", ACCOUNT, "--db", _url(traded)]
    )
    (account,) = doc["accounts"]
    assert account["account"] == ACCOUNT
    assert account["cash"] == Decimal("100.00") + Decimal("999.50") - Decimal("1000.00")
    assert account["positions"] == [
        {"symbol": "BND", "quantity": Decimal("13.78620084")},
        {"symbol": "VTI", "quantity": 6},
    ]
    everyone = _json(["broker", "positions", "--format", "json", "--db", _url(traded)])
    other = everyone["accounts"][1]
    assert (other["cash"], other["buying_power"]) == (Decimal("50.00"), Decimal("45.00"))


def test_tables_for_people(traded: Sim) -> None:
    orders = runner.invoke(app, ["broker", "orders", "--db", _url(traded), "--account", OTHER])
    assert orders.exit_code == 0
    assert "2 orders at the simulated broker" in orders.stdout
    assert "limit 10" in orders.stdout and "UTC" in orders.stdout
    positions = runner.invoke(app, ["broker", "positions", "--db", _url(traded)])
    assert "2 accounts" in positions.stdout and "13.78620084" in positions.stdout


def test_the_database_comes_from_rebal_db(traded: Sim, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REBAL_DB", _url(traded))
    assert len(_json(["broker", "orders", "--format", "json"])["orders"]) == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--account", "NOPE"], "keeps no account NOPE"),
        (["--db", "nonsense://x"], "is not a database URL"),
    ],
)
def test_bad_input_is_a_clear_error(traded: Sim, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["broker", "positions", "--db", _url(traded), *args])
    assert result.exit_code == 1
    assert message in result.output


def test_a_database_without_a_ledger_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["broker", "orders", "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 1
    assert "no database file" in result.output
    assert not (tmp_path / "x.db").exists()
