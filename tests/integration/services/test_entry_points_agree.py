"""One request, every entry point, one result.

Each use case (drift, propose plain, tax-aware, households and the optimiser, backtest, wash
sales) is driven through the command line and the Python API (and, for the backtest, the lab's
own functions) with the same request, and the results must be identical: the same JSON document,
the same metrics, the same wash sales. A refused request is refused by each entry point with the
same message, options spelled as each spells them.
"""

from __future__ import annotations

import json
from decimal import Decimal
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rebal import api
from rebal.backtest.engine import Costs
from rebal.backtest.schedule import ScheduleSpec
from rebal.backtest.sweep import run_lab
from rebal.backtest.variants import Variant
from rebal.cli.book_commands import option_name
from rebal.cli.main import app
from rebal.cli.tax import wash_sales_document
from rebal.core.bands import BandSpec
from rebal.io.exact_json import exact_json
from rebal.io.price_history import load_shipped
from rebal.io.transactions import read_transactions
from rebal.proposal_output import document_chunks
from rebal.services.requests import (
    SHIPPED_WEIGHTS,
    BacktestRequest,
    Bands,
    RequestError,
    backtest_request,
)
from rebal.tax.lots import LotMethod
from rebal.tax.rates import TaxRates
from rebal.testkit import write_book_files

runner = CliRunner()
SAMPLE = resources.files("rebal") / "data" / "sample"
TABLES = ("models", "accounts", "holdings", "prices")


def _sample_frames() -> list[pd.DataFrame]:
    return [
        pd.read_csv(str(SAMPLE / f"{name}.csv"), dtype=str, keep_default_na=False)
        for name in TABLES
    ]


def _cli(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.stdout


def _document(result: api.Result, *, trades: bool) -> str:
    chunks = document_chunks(
        result.book, result.proposal, include_trades=trades, tax=result.tax_aware
    )
    return "".join(chunks)


def test_drift_is_the_same_from_the_cli_and_the_api():
    cli = _cli(["drift", "--sample", "--band-abs", "4", "--rail-abs", "1", "--format", "json"])
    result = api.drift(*_sample_frames(), band_abs=4, rail_abs=1)
    assert json.loads(cli) == json.loads(_document(result, trades=False))


def test_propose_with_flows_is_the_same_from_the_cli_and_the_api():
    """Deposits and withdrawals are taken by both, the API's float rounded to the cent."""
    options = ["--policy", "tiered", "--band-rel", "25", "--cash-reserve", "2", "--min-trade", "5"]
    flows = ["--deposit", "ACC-000001=2500", "--withdraw", "ACC-000002=1000.10"]
    cli = _cli(["propose", "--sample", *options, *flows, "--format", "json"])
    result = api.propose(
        *_sample_frames(),
        policy="tiered",
        band_rel=25,
        cash_reserve=2,
        min_trade=5,
        deposits={"ACC-000001": 2500},
        withdrawals={"ACC-000002": 1000.0 + 0.1},  # 1000.1 in a float, rounded to 1000.10
    )
    doc = json.loads(cli)
    assert doc["accounts"] == json.loads(_document(result, trades=True))["accounts"]
    flowed = {a["account"]: a["pending_cash"] for a in doc["accounts"][:2]}
    assert flowed == {"ACC-000001": 2500.0, "ACC-000002": -1000.1}


@pytest.mark.parametrize("household", [False, True], ids=["tax-aware", "households"])
def test_tax_aware_propose_is_the_same_from_the_cli_and_the_api(household):
    extra = ["--household", "--tax-inefficient", "BND,TIP"] if household else []
    args = ["--tax-aware", "--as-of", "2026-11-20", "--gain-budget", "500", "--st-rate", "35"]
    cli = _cli(["propose", "--sample", *args, *extra, "--format", "json"])
    result = api.propose(
        *_sample_frames(),
        tax_aware=True,
        as_of=pd.Timestamp("2026-11-20").date(),
        gain_budget=500,
        st_rate=35,
        household=household,
        tax_inefficient=["bnd", "TIP"] if household else (),  # symbols normalised alike
    )
    assert json.loads(cli) == json.loads(_document(result, trades=True))


TAX_BOOK = {
    "models": "model,symbol,weight\nm,VTI,60\nm,BND,40\n",
    "accounts": "account,model,cash,type,household\nt1,m,0,taxable,h1\ni1,m,0,ira,h1\n",
    "holdings": (
        "account,symbol,quantity,cost_basis,acquired\n"
        "t1,VTI,50,5000,2020-01-02\n"
        "t1,VTI,50,7500,2025-06-01\n"
        "t1,BND,40,4000,2020-01-02\n"
        "i1,VTI,100,10000,2020-01-02\n"
        "i1,BND,40,4000,2020-01-02\n"
    ),
    "prices": "symbol,price\nVTI,200\nBND,100\n",
}


def test_the_optimiser_is_the_same_from_the_cli_and_the_api(tmp_path):
    files = write_book_files(tmp_path, TAX_BOOK)
    args = ["--tax-aware", "--as-of", "2025-12-01", "--optimizer", "highs", "--format", "json"]
    cli = _cli(["propose", *files, *args])
    frames = [pd.read_csv(tmp_path / f"{name}.csv", dtype=str) for name in TABLES]
    result = api.propose(
        *frames, tax_aware=True, as_of=pd.Timestamp("2025-12-01").date(), optimizer="highs"
    )
    assert json.loads(cli) == json.loads(_document(result, trades=True))
    assert any(a["trades"] for a in json.loads(cli)["accounts"])


def test_a_backtest_is_the_same_from_the_cli_the_api_and_the_lab(tmp_path):
    """Bands in percent on the command line and in ``api.backtest``; the lab's own variants
    take the core's fractions."""
    out = tmp_path / "metrics.csv"
    options = ["--policy", "rails", "--band-rel", "15", "--rail-abs", "3", "--start", "1950"]
    money = ["--flow", "100", "--cost-bps", "10", "--tax-rate", "20", "--lots", "fifo"]
    _cli(["backtest", *options, *money, "--end", "2009", "--out", str(out)])
    cli = pd.read_csv(out)
    from_api = api.backtest(
        policy="rails",
        band_rel=15,
        rail_abs=3,
        start=pd.Timestamp("1950-01-01").date(),
        end=pd.Timestamp("2009-12-31").date(),
        flow=100,
        cost_bps=10,
        tax_rate=20,
        lots="fifo",
    ).table
    history = load_shipped().select(["STOCKS", "BONDS"])
    history = history.between(pd.Timestamp("1950-01-01").date(), pd.Timestamp("2009-12-31").date())
    flows = np.zeros(len(history.dates))
    flows[ScheduleSpec(frequency="monthly").mask(history.dates)] = 100.0
    lab = run_lab(
        history,
        [Variant("rails", BandSpec(band_rel=0.15, rail_abs=0.03), ScheduleSpec("daily"))],
        np.array([0.6, 0.4]),
        initial=10_000.0,
        flows=flows,
        costs=Costs(bps=10.0),
        tax=TaxRates(short_term=Decimal("0.2"), long_term=Decimal("0.2")),
        lots=LotMethod.FIFO,
    ).table
    numbers = ["final_value", "annual_return", "events", "turnover", "costs", "taxes", "rail_abs"]
    for column in numbers:
        assert cli[column].tolist() == from_api[column].tolist() == lab[column].tolist(), column
    assert cli["events"].iloc[0] > 0


HISTORY = """date,account,household,account_type,symbol,side,quantity,price,lot_id
2025-01-06,joint,smith,taxable,VTI,buy,100,10.00,a
2025-03-10,joint,smith,taxable,vti,sell,100,7.50,a
2025-03-20,ira,smith,ira,VTI,buy,40,8.00,
2025-03-21,spouse,smith,taxable,ITOT,buy,60,8.00,
"""


def test_wash_sales_are_the_same_from_the_cli_and_the_api(tmp_path: Path):
    path = tmp_path / "history.csv"
    path.write_text(HISTORY)
    args = ["--transactions", str(path), "--identical", "vti,ITOT", "--format", "json"]
    cli = json.loads(_cli(["wash-sales", *args]))
    result = api.wash_sales(read_transactions(path), identical=[["VTI", "itot"]])
    assert cli == json.loads(exact_json(wash_sales_document(result)))
    assert cli["total_disallowed"] == 250.0


@pytest.mark.parametrize(
    ("cli_options", "api_options"),
    [
        (["--band-abs", "5", "--band-rel", "20"], {"band_abs": 5, "band_rel": 20}),
        (["--gain-budget", "100"], {"gain_budget": 100}),
        (["--tax-aware", "--tlh"], {"tax_aware": True, "tlh": True}),
        (["--cash-reserve", "100"], {"cash_reserve": 100}),
        (
            ["--tax-aware", "--lt-rate", "60", "--state-rate", "40"],
            {"tax_aware": True, "lt_rate": 60, "state_rate": 40},
        ),
        (["--withdraw", "ACC-000001=0"], {"withdrawals": {"ACC-000001": 0}}),
        (["--min-trade", "0.005"], {"min_trade": "0.005"}),
    ],
)
def test_a_refused_request_says_the_same_from_the_cli_and_the_api(cli_options, api_options):
    with pytest.raises(RequestError) as refused:
        api.propose(*_sample_frames(), **api_options)
    result = runner.invoke(app, ["propose", "--sample", *cli_options])
    assert result.exit_code == 1
    assert refused.value.spelled(option_name) in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("cli_options", "api_options"),
    [
        (["--band-abs", "5", "--band-rel", "20"], {"band_abs": 5, "band_rel": 20}),
        (
            ["--wide-band-rel", "-3", "--policy", "tiered"],
            {"wide_band_rel": -3, "policy": "tiered"},
        ),
        (["--state-rate", "5"], {"state_rate": 5}),
        (["--weights", "stocks=70,bonds=40"], {"weights": {"stocks": 70, "bonds": 40}}),
        (["--lots", "specific"], {"lots": "specific"}),
    ],
)
def test_a_refused_backtest_says_the_same_from_the_cli_and_the_api(cli_options, api_options):
    with pytest.raises(RequestError) as refused:
        api.backtest(**api_options)
    result = runner.invoke(app, ["backtest", *cli_options])
    assert result.exit_code == 1
    assert refused.value.spelled(option_name) in " ".join(result.output.split())


def test_the_backtest_request_takes_the_entry_point_s_options_by_name():
    options = {"band_rel": 15, "wide_band_abs": 4, "flow": 100.0, "prices": ["p.csv"], "out": None}
    assert backtest_request(options, shipped=True) == BacktestRequest(
        bands=Bands(band_rel=15, wide_band_abs=4), flow=100.0, weights=SHIPPED_WEIGHTS
    )
    assert backtest_request({}, shipped=False).weights is None
