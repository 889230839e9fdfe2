"""The sample book shipped in the package: reproducible, valid, and covering every condition.

`rebal propose --sample` runs on these files, so a user relies on them being well-formed and on
them actually containing the situations the engine handles. The checks read the CSVs directly
(not through rebal.io) so they pin the files themselves.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pandas as pd
import pytest

SAMPLE = Path(str(files("rebal") / "data" / "sample"))
GENERATOR = Path(__file__).resolve().parents[2] / "scripts" / "make_sample_book.py"
TABLES = ("models", "accounts", "holdings", "prices")
HEADERS = {
    "models": "model,symbol,weight,band_abs,band_rel,rail_abs,rail_rel",
    "accounts": "account,model,cash,type,household,can_trade,restricted,pending_cash,liquidate",
    "holdings": "account,symbol,quantity,cost_basis,acquired",
    "prices": "symbol,price",
}
MONEY = re.compile(r"-?\d+(\.\d{1,2})?")
QUANTITY = re.compile(r"\d+(\.\d{1,6})?")


def read(name: str) -> pd.DataFrame:
    """One shipped table, every cell as the string written in the file."""
    return pd.read_csv(SAMPLE / f"{name}.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def book() -> dict[str, pd.DataFrame]:
    """The four shipped tables by name."""
    return {name: read(name) for name in TABLES}


@pytest.fixture(scope="module")
def held(book: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Holdings rows with their market value at the snapshot price (NaN when unpriced)."""
    holdings = book["holdings"]
    prices = book["prices"].set_index("symbol")["price"].astype(float)
    value = holdings["quantity"].astype(float) * holdings["symbol"].map(prices)
    return holdings.assign(value=value)


@pytest.fixture(scope="module")
def totals(book: dict[str, pd.DataFrame], held: pd.DataFrame) -> pd.Series:
    """Account value: priced positions plus cash, by account id."""
    cash = book["accounts"].set_index("account")["cash"].astype(float)
    return held.groupby("account")["value"].sum().reindex(cash.index, fill_value=0.0) + cash


@pytest.fixture(scope="module")
def drift(book: dict[str, pd.DataFrame], held: pd.DataFrame, totals: pd.Series) -> pd.Series:
    """Largest relative deviation from target per modelled, fully priced account.

    Weights are shares of the account's total value (positions plus cash); cash counts as the
    CASH position where the model has one.
    """
    accounts = book["accounts"]
    unpriced = set(held.loc[held["value"].isna(), "account"])
    modelled = accounts[(accounts["model"] != "") & ~accounts["account"].isin(unpriced)]
    positions = held.groupby(["account", "symbol"], as_index=False)["value"].sum()
    rows = modelled[["account", "model", "cash"]].merge(book["models"], on="model")
    rows = rows.merge(positions, on=["account", "symbol"], how="left")
    value = rows["value"].fillna(0.0).where(rows["symbol"] != "CASH", rows["cash"].astype(float))
    target = rows["weight"].astype(float) / 100
    relative = (value / rows["account"].map(totals) - target).abs() / target
    return relative.groupby(rows["account"]).max()


def test_generator_reproduces_the_shipped_files_byte_for_byte(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(GENERATOR), "--out", str(tmp_path)], check=True)
    for name in TABLES:
        assert (tmp_path / f"{name}.csv").read_bytes() == (SAMPLE / f"{name}.csv").read_bytes()


def test_headers_are_exactly_the_public_formats() -> None:
    for name, header in HEADERS.items():
        assert (SAMPLE / f"{name}.csv").read_text().splitlines()[0] == header


def test_models_are_four_etf_models_with_a_cash_row_and_a_band_override(
    book: dict[str, pd.DataFrame],
) -> None:
    models = book["models"]
    sums = models.groupby("model")["weight"].apply(lambda w: w.astype(float).sum())
    assert sums.to_dict() == {"balanced": 100, "conservative": 100, "growth": 100, "income": 100}
    securities = models[models["symbol"] != "CASH"].groupby("model").size()
    assert securities.between(4, 7).all()
    assert list(models.loc[models["symbol"] == "CASH", "model"]) == ["income"]
    overrides = models[models["band_abs"] != ""]
    assert overrides[["model", "symbol", "band_abs"]].values.tolist() == [["growth", "VNQ", "3"]]
    assert not models.duplicated(["model", "symbol"]).any()


def test_files_are_valid_by_the_input_rules(book: dict[str, pd.DataFrame]) -> None:
    accounts, holdings, prices = book["accounts"], book["holdings"], book["prices"]
    for name, frame in book.items():
        assert not frame.duplicated().any(), name
    assert not accounts["account"].duplicated().any()
    assert not prices["symbol"].duplicated().any()
    assert (prices["price"].astype(float) > 0).all()
    assert prices["price"].str.fullmatch(r"\d+\.\d{2,4}").all()
    assert set(accounts["model"]) - {""} <= set(book["models"]["model"])
    assert set(holdings["account"]) <= set(accounts["account"])
    assert holdings["quantity"].str.fullmatch(QUANTITY).all()
    assert (holdings["quantity"].astype(float) > 0).all()
    for column in ("cash", "pending_cash"):
        assert accounts[column].str.fullmatch(MONEY).all(), column
    assert holdings["cost_basis"].str.fullmatch(MONEY).all()
    assert (holdings["cost_basis"].astype(float) >= 0).all()
    acquired = pd.to_datetime(holdings["acquired"], format="%Y-%m-%d")
    assert acquired.max() < pd.Timestamp("2026-11-20")
    assert "CASH" not in set(holdings["symbol"])
    assert set(accounts["can_trade"]) == set(accounts["liquidate"]) == {"true", "false"}
    assert (SAMPLE / "holdings.csv").stat().st_size < 1_500_000


def test_accounts_look_like_a_real_book(book: dict[str, pd.DataFrame], totals: pd.Series) -> None:
    accounts = book["accounts"]
    assert 2900 <= len(accounts) <= 3100
    assert accounts["account"].str.fullmatch(r"ACC-\d{6}").all()
    assert set(accounts["type"]) == {"taxable", "ira", "roth"}
    assert accounts.groupby("household").size().between(1, 3).all()
    assert accounts.groupby("household").size().max() == 3
    assert totals.quantile(0.01) >= 2_000 and totals.quantile(0.99) >= 1_000_000
    assert totals.max() <= 6_000_000
    cash_share = accounts.set_index("account")["cash"].astype(float) / totals
    assert cash_share.between(-0.05, 0.05).mean() > 0.99


def test_lots_carry_cost_bases_with_gains_and_losses(held: pd.DataFrame) -> None:
    lots_per_position = held.groupby(["account", "symbol"])["acquired"].nunique()
    assert lots_per_position.max() == 3
    assert (lots_per_position >= 2).mean() > 0.1
    assert (held.groupby(["account", "symbol"]).size() == lots_per_position).all()
    gain = held["value"] - held["cost_basis"].astype(float)
    assert (gain > 0).mean() > 0.2 and (gain < 0).mean() > 0.1


def test_about_a_third_of_accounts_hold_fractional_shares(book: dict[str, pd.DataFrame]) -> None:
    holdings = book["holdings"]
    fractional = holdings["quantity"].str.contains(".", regex=False)
    fractional = fractional.groupby(holdings["account"]).any()
    assert 0.2 <= fractional.mean() <= 0.4


def test_a_realistic_share_of_accounts_breach_a_20_percent_relative_band(drift: pd.Series) -> None:
    assert 0.20 <= (drift > 0.20).mean() <= 0.35
    assert (drift < 0.01).mean() >= 0.04


def test_every_condition_the_engine_handles_is_present(
    book: dict[str, pd.DataFrame], held: pd.DataFrame, totals: pd.Series, drift: pd.Series
) -> None:
    accounts = book["accounts"]
    n = len(accounts)
    pending = accounts["pending_cash"].astype(float)
    cash = accounts["cash"].astype(float)
    assert 0.02 * n <= (pending > 0).sum() <= 0.04 * n
    assert 0.01 * n <= (pending < 0).sum() <= 0.03 * n
    assert 5 <= (accounts["liquidate"] == "true").sum() <= 30
    assert 15 <= (accounts["can_trade"] == "false").sum() <= 60
    assert 0.02 * n <= (accounts["restricted"] != "").sum() <= 0.04 * n
    assert 15 <= (accounts["model"] == "").sum() <= 60
    assert 3 <= (cash < 0).sum() <= 20

    withdrawals = accounts[pending < 0].set_index("account")
    assert (-withdrawals["pending_cash"].astype(float) < totals.loc[withdrawals.index]).all()

    positions = set(zip(held["account"], held["symbol"], strict=True))
    restricted = accounts[accounts["restricted"] != ""]
    held_restricted = [
        a
        for a, r in zip(restricted["account"], restricted["restricted"], strict=True)
        if any((a, s) in positions for s in r.split(";"))
    ]
    assert any(drift.get(a, 0.0) > 0.2 for a in held_restricted)
    assert len(held_restricted) < len(restricted)

    assert held.loc[held["value"].isna(), "account"].nunique() == 1
    single = held.groupby("account").agg(rows=("symbol", "size"), value=("value", "sum"))
    assert ((single["rows"] == 1) & (single["value"] < 10)).sum() == 1

    model_symbols = set(book["models"]["symbol"])
    legacy = held.loc[~held["symbol"].isin(model_symbols), "account"].nunique()
    assert 5 <= legacy <= 40
