"""The Python API: DataFrames in, DataFrames out, the same rules as the command line."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from rebal import api
from rebal.io.errors import InputError

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
