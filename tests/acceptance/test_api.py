"""The Python API: DataFrames in, DataFrames out, the same rules as the command line."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from rebal import api
from rebal.errors import InputError

MODELS = pd.DataFrame({"model": ["m", "m"], "symbol": ["VTI", "BND"], "weight": [60, 40]})
ACCOUNTS = pd.DataFrame({"account": ["a1", "a2"], "model": ["m", "m"], "cash": [0, 0]})
HOLDINGS = pd.DataFrame(
    {
        "account": ["a1", "a1", "a2", "a2"],
        "symbol": ["VTI", "BND"] * 2,
        "quantity": [90, 10, 60, 40],
    }
)
PRICES = pd.DataFrame({"symbol": ["VTI", "BND"], "price": [10.0, 10.0]})


def test_propose_returns_frames_with_exact_money():
    result = api.propose(MODELS, ACCOUNTS, HOLDINGS, PRICES, policy="full")

    assert result.accounts.set_index("account")["status"].to_dict() == {
        "a1": "out_of_tolerance",
        "a2": "inside_tolerance",
    }
    trades = result.trades[["account", "symbol", "side", "quantity", "amount"]]
    assert trades.values.tolist() == [
        ["a1", "VTI", "sell", Decimal("30"), Decimal("300.00")],
        ["a1", "BND", "buy", Decimal("30"), Decimal("300.00")],
    ]
    assert result.blotter["accounts"].tolist() == [1, 1]
    assert result.positions.columns[:3].tolist() == ["account", "symbol", "quantity"]


def test_drift_proposes_nothing():
    result = api.drift(MODELS, ACCOUNTS, HOLDINGS, PRICES, band_abs=5)
    assert result.trades.empty
    assert result.accounts["orders"].tolist() == [0, 0]
    assert result.accounts.loc[0, "status"] == "out_of_tolerance"


def test_invalid_frames_raise_with_every_problem():
    bad = MODELS.assign(weight=[60, 30])
    with pytest.raises(InputError, match="sum to 90"):
        api.propose(bad, ACCOUNTS, HOLDINGS, PRICES)


def test_a_float_cash_computed_in_python_is_rounded_to_the_cent_half_to_even():
    """0.1 + 0.2 is 0.30000000000000004 as a float: taken as 0.30, not refused."""
    accounts = ACCOUNTS.assign(cash=[0.1 + 0.2, 0.125])  # 0.125 is exact: half to even, 0.12
    result = api.propose(MODELS, accounts, HOLDINGS, PRICES)
    assert result.accounts["cash"].tolist() == [Decimal("0.30"), Decimal("0.12")]
    with pytest.raises(InputError, match="more than 2 decimal places"):  # text: as in a file
        api.propose(MODELS, ACCOUNTS.assign(cash=["0.305", "0"]), HOLDINGS, PRICES)


def test_deposits_and_withdrawals_trade_like_the_cli_flows():
    result = api.propose(
        MODELS,
        ACCOUNTS,
        HOLDINGS,
        PRICES,
        policy="full",
        deposits={"a2": 0.1 + 0.2 + 99.7},  # 100.00000000000001 in a float: 100.00
        withdrawals={"a1": Decimal("100.00")},
    )
    accounts = result.accounts.set_index("account")
    assert accounts["pending_cash"].to_dict() == {"a1": Decimal("-100.00"), "a2": Decimal("100.00")}
    trades = result.trades.groupby(["account", "side"])["amount"].sum()
    assert trades["a2", "buy"] - trades.get(("a2", "sell"), 0) == Decimal("100.00")  # invested
    assert trades["a1", "sell"] - trades["a1", "buy"] == Decimal("100.00")  # raised
    with pytest.raises(ValueError, match="whole number of cents"):
        api.propose(MODELS, ACCOUNTS, HOLDINGS, PRICES, deposits={"a1": "10.005"})


def test_contradictory_options_are_refused_as_on_the_command_line():
    with pytest.raises(ValueError, match="give either band_abs or band_rel, not both"):
        api.propose(MODELS, ACCOUNTS, HOLDINGS, PRICES, band_abs=5, band_rel=20)
    with pytest.raises(ValueError, match=r"gain_budget need\(s\) tax_aware"):
        api.propose(MODELS, ACCOUNTS, HOLDINGS, PRICES, gain_budget=100)


def test_band_widths_are_percent_in_propose_and_in_the_lab():
    """``band_rel=20`` is a 20 % band in ``api.propose`` and in ``api.backtest`` alike."""
    positions = api.propose(MODELS, ACCOUNTS, HOLDINGS, PRICES, band_rel=20).positions
    vti = positions[positions["symbol"] == "VTI"].iloc[0]
    assert (vti["band_low"], vti["band_high"]) == (48.0, 72.0)  # 60 % ± 20 % of 60
    table = api.backtest(policy="rails", band_rel=20, rail_rel=5).table
    assert table[["band_rel", "rail_rel"]].iloc[0].tolist() == [0.20, 0.05]
    wide = api.backtest(policy="threshold", band_rel=40).table
    assert table["events"].iloc[0] > wide["events"].iloc[0]  # a wider band trades less often


def test_positions_keep_a_broker_exports_nine_decimals():
    """A fractional holding as a broker exports it (9 decimals) comes back exactly, not cut to
    the micro-shares the core trades."""
    holdings = HOLDINGS.assign(quantity=["90.123456789", "10", "60", "40"])
    result = api.drift(MODELS, ACCOUNTS, holdings, PRICES)
    quantity = result.positions.set_index(["account", "symbol"])["quantity"]
    assert quantity[("a1", "VTI")] == Decimal("90.123456789")
    assert quantity[("a2", "BND")] == Decimal("40")
