"""`rebal.api.propose(..., tax_aware=True)`: the command line's tax options as keyword arguments."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pandas as pd
import pytest

from rebal.api import propose
from rebal.errors import InputError

MODELS = pd.DataFrame({"model": "m", "symbol": ["VTI", "BND"], "weight": [60, 40]})
ACCOUNTS = pd.DataFrame({"account": ["t1"], "model": ["m"], "cash": ["0"], "type": ["taxable"]})
HOLDINGS = pd.DataFrame(
    {
        "account": ["t1", "t1", "t1"],
        "symbol": ["VTI", "VTI", "BND"],
        "quantity": ["50", "50", "40"],
        "cost_basis": ["5000", "7500", "4000"],
        "acquired": ["2020-01-02", "2025-06-01", "2020-01-02"],
    }
)
PRICES = pd.DataFrame({"symbol": ["VTI", "BND"], "price": ["200", "100"]})


def test_tax_frame_has_one_row_per_account_with_exact_money():
    result = propose(
        MODELS,
        ACCOUNTS,
        HOLDINGS,
        PRICES,
        tax_aware=True,
        as_of=date(2025, 12, 1),
        lot_method="hifo",
        whole_shares=True,
    )

    row = result.tax.set_index("account").loc["t1"]
    assert row["realized_st"] == Decimal("900.00")
    assert row["estimated_tax"] == Decimal("333.00")
    assert row["method"] == "rule-based"
    assert result.trades.iloc[0]["symbol"] == "VTI"


def test_taxable_lots_without_basis_raise_input_error():
    holdings = HOLDINGS.assign(cost_basis=["5000", "", "4000"])

    with pytest.raises(InputError, match="holdings line 3, column cost_basis"):
        propose(MODELS, ACCOUNTS, holdings, PRICES, tax_aware=True, as_of=date(2025, 12, 1))


def test_the_optimizer_prints_nothing(capfd):
    """The Python API's caller owns standard output: the solver's banner and log stay out of it."""
    capfd.readouterr()
    propose(
        MODELS,
        ACCOUNTS,
        HOLDINGS,
        PRICES,
        tax_aware=True,
        as_of=date(2025, 12, 1),
        optimizer="highs",
    )
    assert capfd.readouterr().out == ""
