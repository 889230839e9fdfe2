"""Validating and normalising book tables given as DataFrames from Python."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebal.io.tables import InputError, Problem, Tables, validate_tables


def book(**tables: dict[str, list[Any]]) -> dict[str, pd.DataFrame]:
    """A valid book of DataFrames, with any table replaced by the given columns."""
    columns: dict[str, dict[str, list[Any]]] = {
        "models": {"model": ["growth", "growth"], "symbol": ["VTI", "BND"], "weight": ["60", "40"]},
        "accounts": {"account": ["A1"], "model": ["growth"], "cash": ["100"]},
        "holdings": {"account": ["A1"], "symbol": ["VTI"], "quantity": ["10"]},
        "prices": {"symbol": ["VTI", "BND"], "price": ["250", "70"]},
    }
    columns.update(tables)
    return {name: pd.DataFrame(data) for name, data in columns.items()}


def validate(**tables: dict[str, list[Any]]) -> Tables:
    return validate_tables(**book(**tables))


def problems(**tables: dict[str, list[Any]]) -> list[str]:
    with pytest.raises(InputError) as caught:
        validate(**tables)
    return str(caught.value).splitlines()


def test_weights_accept_percent_signs_and_spaces() -> None:
    models = validate(
        models={
            "model": ["growth"] * 4,
            "symbol": ["a", "b", "c", "CASH"],
            "weight": ["40", "40%", " 10.5 % ", "9.5"],
        }
    ).models
    assert list(models["weight"]) == pytest.approx([0.40, 0.40, 0.105, 0.095])
    assert list(models["symbol"]) == ["A", "B", "C", "CASH"]
    assert models["weight"].dtype == np.float64


def test_weights_within_a_hundredth_of_100_are_accepted() -> None:
    models = validate(
        models={
            "model": ["growth"] * 3,
            "symbol": ["a", "b", "c"],
            "weight": ["33.33", "33.33", "33.33"],
        }
    ).models
    assert len(models) == 3


def test_zero_weight_row_is_allowed() -> None:
    models = validate(
        models={
            "model": ["growth"] * 3,
            "symbol": ["a", "b", "c"],
            "weight": ["100", "0", "0%"],
        }
    ).models
    assert list(models["weight"]) == [1.0, 0.0, 0.0]


def test_band_and_rail_columns_are_fractions_or_nan() -> None:
    models = validate(
        models={
            "model": ["growth", "growth"],
            "symbol": ["VTI", "BND"],
            "weight": ["60", "40"],
            "band_abs": ["5", ""],
            "rail_abs": ["2%", ""],
            "band_rel": ["", "25"],
        }
    ).models
    assert models.loc[0, "band_abs"] == pytest.approx(0.05)
    assert models.loc[0, "rail_abs"] == pytest.approx(0.02)
    assert models.loc[1, "band_rel"] == pytest.approx(0.25)
    assert np.isnan(models.loc[1, "band_abs"])
    assert models["rail_rel"].isna().all()


def test_optional_account_columns_default() -> None:
    accounts = validate().accounts
    row = accounts.iloc[0]
    assert row["type"] == "taxable"
    assert row["household"] == ""
    assert bool(row["can_trade"]) is True
    assert row["restricted"] == ()
    assert row["pending_cents"] == 0
    assert bool(row["liquidate"]) is False


def test_account_columns_are_parsed() -> None:
    accounts = validate(
        accounts={
            "account": ["A1", "A2", "A3"],
            "model": ["growth", "", "growth"],
            "cash": ["-12.5", "0", "7"],
            "type": ["IRA", "Roth", ""],
            "household": ["Smith", "", "Smith"],
            "can_trade": ["No", "1", ""],
            "restricted": ["vti; bnd;", "", "bnd;BND"],
            "pending_cash": ["-100.01", "", "3.1"],
            "liquidate": ["YES", "false", "0"],
        }
    ).accounts
    assert list(accounts["model"]) == ["growth", "", "growth"]
    assert list(accounts["cash_cents"]) == [-1250, 0, 700]
    assert list(accounts["type"]) == ["ira", "roth", "taxable"]
    assert list(accounts["household"]) == ["Smith", "", "Smith"]
    assert list(accounts["can_trade"]) == [False, True, True]
    assert list(accounts["restricted"]) == [("BND", "VTI"), (), ("BND",)]
    assert list(accounts["pending_cents"]) == [-10001, 0, 310]
    assert list(accounts["liquidate"]) == [True, False, False]
    assert accounts["cash_cents"].dtype == np.int64
    assert accounts["can_trade"].dtype == bool


def test_money_and_quantities_convert_exactly() -> None:
    tables = validate(
        accounts={
            "account": ["A1", "A2", "A3", "A4"],
            "model": ["growth"] * 4,
            "cash": ["0.1", "0.2", "1234567.89", "1.500"],
        },
        holdings={
            "account": ["A1", "A2", "A3"],
            "symbol": ["VTI", "VTI", "BND"],
            "quantity": ["0.000001", "123456.123456", ".5"],
            "cost_basis": ["0.29", "", "99999999.99"],
        },
    )
    cash = tables.accounts["cash_cents"]
    assert list(cash) == [10, 20, 123456789, 150]
    assert cash[0] + cash[1] == 30
    assert list(tables.holdings["quantity_micro"]) == [1, 123456123456, 500000]
    assert tables.holdings["cost_basis_cents"].dtype == "Int64"
    assert tables.holdings["cost_basis_cents"].tolist() == [29, pd.NA, 9999999999]


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.decimals(min_value=-(10**12), max_value=10**12, places=2), min_size=1, max_size=20)
)
def test_any_two_decimal_amount_round_trips_to_cents(amounts: list[Decimal]) -> None:
    accounts = validate(
        accounts={
            "account": ["A1"] + [f"B{i}" for i in range(1, len(amounts))],
            "model": ["growth"] * len(amounts),
            "cash": [str(amount) for amount in amounts],
        }
    ).accounts
    assert list(accounts["cash_cents"]) == [int(amount * 100) for amount in amounts]


def test_holdings_lots_dates_and_lines() -> None:
    holdings = validate(
        holdings={
            "account": ["A1", "A1"],
            "symbol": ["vti", "VTI"],
            "quantity": ["1", "1"],
            "acquired": ["2020-01-02", ""],
        }
    ).holdings
    assert list(holdings["symbol"]) == ["VTI", "VTI"]
    assert list(holdings["acquired"]) == [dt.date(2020, 1, 2), None]
    assert list(holdings["line"]) == [2, 3]


def test_prices_keep_their_text_for_exact_use() -> None:
    prices = validate(prices={"symbol": ["vti", "BND"], "price": ["250.10", " 70 "]}).prices
    assert list(prices["symbol"]) == ["VTI", "BND"]
    assert list(prices["price"]) == [250.1, 70.0]
    assert list(prices["price_text"]) == ["250.10", "70"]


def test_symbols_without_a_price_are_not_an_input_error() -> None:
    tables = validate(prices={"symbol": ["VTI"], "price": ["250"]})
    assert list(tables.prices["symbol"]) == ["VTI"]


def test_python_numbers_dates_and_missing_cells_are_read_like_text() -> None:
    tables = validate_tables(
        models=pd.DataFrame(
            {
                "model": ["growth", "growth"],
                "symbol": ["VTI", "BND"],
                "weight": [60.0, 40],
                "band_abs": [5, np.nan],
            }
        ),
        accounts=pd.DataFrame(
            {
                "account": ["A1"],
                "model": ["growth"],
                "cash": [0.1],
                "can_trade": [False],
                "household": [None],
            }
        ),
        holdings=pd.DataFrame(
            {
                "account": ["A1"],
                "symbol": ["VTI"],
                "quantity": [10],
                "acquired": pd.to_datetime(["2021-03-04"]),
            }
        ),
        prices=pd.DataFrame({"symbol": ["VTI", "BND"], "price": [250.5, 70]}),
    )
    assert tables.models["weight"].tolist() == [0.6, 0.4]
    assert np.isnan(tables.models.loc[1, "band_abs"])
    assert tables.accounts.loc[0, "cash_cents"] == 10
    assert not tables.accounts.loc[0, "can_trade"]
    assert tables.accounts.loc[0, "household"] == ""
    assert tables.holdings.loc[0, "acquired"] == dt.date(2021, 3, 4)
    assert tables.prices["price"].tolist() == [250.5, 70.0]


def test_outputs_have_a_fresh_index_and_blank_rows_are_dropped() -> None:
    frames = book()
    frames["accounts"] = pd.DataFrame(
        {"account": ["A1", "", "A2"], "model": ["growth", "", ""], "cash": ["1", "", "2"]},
        index=[10, 20, 30],
    )
    tables = validate_tables(**frames)
    assert list(tables.accounts["account"]) == ["A1", "A2"]
    assert tables.accounts.index.equals(pd.RangeIndex(2))


def test_dataframe_problems_name_the_table_and_count_lines_from_two() -> None:
    assert problems(
        accounts={
            "account": ["A1", "A2"],
            "model": ["growth", "growth"],
            "cash": ["1", "abc"],
        }
    ) == ["accounts line 3, column cash: 'abc' is not a number"]


def test_problems_carry_file_row_and_column() -> None:
    with pytest.raises(InputError) as caught:
        validate(holdings={"account": ["A1"], "symbol": ["VTI"], "quantity": ["-1"]})
    assert caught.value.problems == [
        Problem("holdings", 2, "quantity", "negative quantity '-1' (quantity must be > 0)")
    ]
    assert isinstance(caught.value, ValueError)


def test_unreadable_weight_does_not_also_report_the_sum() -> None:
    assert problems(
        models={
            "model": ["growth", "growth"],
            "symbol": ["VTI", "BND"],
            "weight": ["60", "forty"],
        }
    ) == ["models line 3, column weight: 'forty' is not a number"]


def test_each_model_is_summed_separately() -> None:
    assert problems(
        models={
            "model": ["growth", "growth", "income", "income"],
            "symbol": ["VTI", "BND", "BND", "CASH"],
            "weight": ["60", "40", "80", "30"],
        }
    ) == ["models line 4, column weight: weights of model 'income' sum to 110%, not 100%"]


def test_missing_required_values_are_named() -> None:
    assert problems(
        holdings={"account": [""], "symbol": [""], "quantity": ["1"]},
    ) == [
        "holdings line 2, column account: missing account id",
        "holdings line 2, column symbol: missing symbol",
    ]


def test_holdings_of_unknown_accounts_are_not_checked_against_a_broken_accounts_table() -> None:
    assert problems(accounts={"account": ["A1"], "cash": ["1"]}) == [
        "accounts: missing required column(s): model"
    ]
