"""`rebal propose --tax-aware` end to end through the command line, on small worked books.

The book: model m = VTI 60 % / BND 40 %, prices VTI 200, BND 100, as of 2025-12-01. Taxable
account t1 holds VTI lot A (line 2: 50 shares, cost 100 each, 2020, long term) and lot B
(line 3: 50 shares, cost 150 each, June 2025, short term) and 40 BND: VTI is at 83 %, far above
its 48-72 % band, so VTI must be sold.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rebal.cli.main import app
from rebal.testkit import write_book_files

runner = CliRunner()

MODELS = "model,symbol,weight\nm,VTI,60\nm,BND,40\n"
ACCOUNTS = "account,model,cash,type,household\nt1,m,0,taxable,h1\ni1,m,0,ira,h1\n"
HOLDINGS = (
    "account,symbol,quantity,cost_basis,acquired\n"
    "t1,VTI,50,5000,2020-01-02\n"
    "t1,VTI,50,7500,2025-06-01\n"
    "t1,BND,40,4000,2020-01-02\n"
    "i1,VTI,100,10000,2020-01-02\n"
    "i1,BND,40,4000,2020-01-02\n"
)
PRICES = "symbol,price\nVTI,200\nBND,100\nAGG,50\nITOT,100\n"
AS_OF = ["--as-of", "2025-12-01"]


def _book(tmp_path: Path, **overrides: str) -> list[str]:
    files = {"models": MODELS, "accounts": ACCOUNTS, "holdings": HOLDINGS, "prices": PRICES}
    return write_book_files(tmp_path, {**files, **overrides})


def _propose(tmp_path: Path, *options: str, **files: str) -> dict[str, dict]:
    args = ["propose", *_book(tmp_path, **files), "--tax-aware", *AS_OF, "--format", "json"]
    result = runner.invoke(app, [*args, *options])
    assert result.exit_code == 0, result.output
    return {a["account"]: a for a in json.loads(result.stdout)["accounts"]}


def _sells(account: dict) -> dict[str, dict]:
    return {t["symbol"]: t for t in account["trades"] if t["side"] == "sell"}


def _buys(account: dict) -> dict[str, dict]:
    return {t["symbol"]: t for t in account["trades"] if t["side"] == "buy"}


def test_hifo_sells_the_highest_cost_lot_and_reports_gain_and_tax_exactly(tmp_path):
    t1 = _propose(tmp_path, "--lot-method", "hifo", "--whole-shares")["t1"]

    vti = _sells(t1)["VTI"]
    shares = vti["quantity"]
    assert shares == 18  # the plan's 18.42 shares, rounded down to whole shares
    assert [lot["lot_id"] for lot in vti["lot"]] == ["VTI-3"]  # cost 150 > 100
    (lot,) = vti["lot"]
    assert lot == {
        "lot_id": "VTI-3",
        "quantity": shares,
        "acquired": "2025-06-01",
        "term": "short",
        "basis": 150 * shares,
        "proceeds": 200 * shares,
        "gain": 50 * shares,
    }
    assert t1["tax"]["realized_st"] == 50 * shares
    assert t1["tax"]["realized_lt"] == 0
    assert t1["tax"]["estimated_tax"] == 333.00  # 900.00 short-term at 37 %
    assert t1["tax"]["wash_sale_flags"] == []
    assert "BND" in _buys(t1)


def test_fifo_sells_the_oldest_lot_long_term(tmp_path):
    t1 = _propose(tmp_path, "--lot-method", "fifo", "--whole-shares")["t1"]

    (lot,) = _sells(t1)["VTI"]["lot"]
    assert (lot["lot_id"], lot["term"]) == ("VTI-2", "long")
    assert t1["tax"]["realized_lt"] == 100 * lot["quantity"]
    assert t1["tax"]["estimated_tax"] == pytest.approx(round(0.20 * 100 * lot["quantity"], 2))


def test_rates_are_options(tmp_path):
    t1 = _propose(
        tmp_path, "--lot-method", "fifo", "--whole-shares", "--lt-rate", "15", "--state-rate", "5"
    )["t1"]

    assert t1["tax"]["estimated_tax"] == pytest.approx(round(0.20 * t1["tax"]["realized_lt"], 2))


def test_json_adds_a_tax_object_per_account_and_lots_on_every_sell(tmp_path):
    accounts = _propose(tmp_path)

    for account in accounts.values():
        assert {"realized_st", "realized_lt", "estimated_tax", "wash_sale_flags"} <= set(
            account["tax"]
        )
        assert {"account", "status", "reason", "trades", "weights_after"} <= set(account)
        for trade in account["trades"]:
            assert ("lot" in trade) == (trade["side"] == "sell")


def test_gain_budget_caps_net_realised_gain_and_reports_what_it_left(tmp_path):
    t1 = _propose(tmp_path, "--gain-budget", "500")["t1"]

    realised = t1["tax"]["realized_st"] + t1["tax"]["realized_lt"]
    assert 0 < realised <= 500
    assert t1["tax"]["outside_band"]["VTI"] > 0  # VTI stays above its band
    assert "gain budget 500.00 left outside the bands: VTI" in t1["reason"]


@pytest.mark.parametrize("method", ["min-tax", "fifo"])
def test_a_withdrawal_is_raised_even_past_the_gain_budget_and_says_by_how_much(tmp_path, method):
    accounts = (
        "account,model,cash,type,household,pending_cash\nt1,m,0,taxable,h1,-5000\ni1,m,0,ira,h1,0\n"
    )
    t1 = _propose(
        tmp_path,
        "--gain-budget",
        "0",
        "--no-short-term-gains",
        "--lot-method",
        method,
        accounts=accounts,
    )["t1"]

    # BND's 4,000 at no gain first, then 1,000 of VTI's long-term lot A (gain 100 a share);
    # the short-term lot B stays unsold, as the switch asks.
    assert t1["cash_after"] >= 0
    assert t1["tax"]["realized_st"] == 0
    assert 0 < t1["tax"]["realized_lt"] < 550
    excess = f"{t1['tax']['realized_lt']:,.2f}"
    assert f"gain budget 0.00 exceeded by {excess} to raise the cash owed" in t1["reason"]
    assert "set aside" not in t1["reason"] and "short-term gains of" not in t1["reason"]


@pytest.mark.parametrize("optimizer", ["rules", "highs"])
def test_a_withdrawal_within_the_gain_budget_sells_what_it_needs_least_tax_first(
    tmp_path, optimizer
):
    t1 = _propose(
        tmp_path, "--gain-budget", "100", "--withdraw", "t1=2000", "--optimizer", optimizer
    )["t1"]

    # 2,000 is raised from 2 shares of VTI lot B (its 100 of gain fills the budget) and
    # BND (no gain), not by rebalancing VTI to its band (over 4,800 sold, 1,200 of gain).
    sold = sum(t["amount"] for t in _sells(t1).values())
    assert 2000 <= sold <= 2010
    assert t1["tax"]["realized_st"] + t1["tax"]["realized_lt"] <= 100
    assert t1["cash_after"] >= 0
    assert not t1["tax"]["wash_sale_flags"]
    for claim in ("wash sale", "set aside", "exceeded"):
        assert claim not in t1["reason"]


def test_no_short_term_gains_realises_none(tmp_path):
    t1 = _propose(tmp_path, "--no-short-term-gains")["t1"]

    assert t1["tax"]["realized_st"] == 0
    lots = _sells(t1)["VTI"]["lot"]
    assert lots and all(lot["term"] == "long" for lot in lots)


def test_no_short_term_gains_with_a_fixed_method_sells_only_what_the_method_allows(tmp_path):
    # HIFO must take the short-term lot first, so nothing may be sold.
    t1 = _propose(tmp_path, "--no-short-term-gains", "--lot-method", "hifo")["t1"]

    assert "VTI" not in _sells(t1)
    assert t1["tax"]["realized_st"] == 0


@pytest.mark.parametrize("household", [False, True])
def test_ira_realises_no_taxable_gain(tmp_path, household):
    i1 = _propose(tmp_path, *(["--household"] if household else []))["i1"]

    vti = _sells(i1)["VTI"]
    assert "lot" in vti
    if household:  # planned by the tax layer: its lots are listed, appreciated
        assert vti["lot"] and all(lot["gain"] > 0 for lot in vti["lot"])
    assert i1["tax"]["realized_st"] == i1["tax"]["realized_lt"] == i1["tax"]["estimated_tax"] == 0


LOSS_HOLDINGS = (
    "account,symbol,quantity,cost_basis,acquired\n"
    "t1,VTI,100,25000,2020-01-02\n"  # a loss of 50 a share
    "t1,BND,40,4000,2020-01-02\n"
)
LOSS_ACCOUNTS = "account,model,cash,type,household\nt1,m,0,taxable,h1\n"


def test_a_loss_is_not_sold_within_30_days_of_a_household_purchase(tmp_path):
    history = tmp_path / "tx.csv"
    history.write_text(
        "date,account,household,account_type,symbol,side,quantity,price\n"
        "2025-11-20,spouse,h1,taxable,VTI,buy,1,190\n"
    )
    free = _propose(tmp_path, accounts=LOSS_ACCOUNTS, holdings=LOSS_HOLDINGS)["t1"]
    guarded = _propose(
        tmp_path, "--transactions", str(history), accounts=LOSS_ACCOUNTS, holdings=LOSS_HOLDINGS
    )["t1"]

    assert free["tax"]["realized_lt"] < 0  # without the history it sells VTI at a loss
    assert "VTI" not in _sells(guarded)
    assert guarded["tax"]["wash_sale_flags"] == []


@pytest.mark.parametrize("bnd", ["BND", "bnd", " Bnd"])
def test_a_blocked_buy_goes_to_a_substitute(tmp_path, bnd):
    """The transactions and substitutes files may write a symbol in any case."""
    history = tmp_path / "tx.csv"
    history.write_text(
        "date,account,household,account_type,symbol,side,quantity,price\n"
        f"2025-01-06,other,h1,taxable,{bnd},buy,10,120\n"
        f"2025-11-25,other,h1,taxable,{bnd},sell,10,100\n"  # a loss 6 days ago
    )
    subs = tmp_path / "subs.txt"
    subs.write_text(f"# bond funds\n{bnd},agg\nVTI,ITOT\n")
    files = {"accounts": LOSS_ACCOUNTS, "holdings": "".join(HOLDINGS.splitlines(True)[:4])}
    plain = _propose(tmp_path, **files)["t1"]
    t1 = _propose(tmp_path, "--transactions", str(history), "--substitutes", str(subs), **files)
    t1 = t1["t1"]

    assert "BND" in _buys(plain)
    assert "BND" not in _buys(t1)
    assert _buys(t1)["AGG"]["amount"] > 0
    assert "BND not bought (wash sale" in t1["reason"] and "AGG bought instead" in t1["reason"]
    assert t1["tax"]["wash_sale_flags"] == []


@pytest.mark.parametrize("substitute", [True, False])
def test_an_ira_does_not_buy_what_the_household_just_sold_at_a_loss(tmp_path, substitute):
    history = tmp_path / "tx.csv"
    history.write_text(
        "date,account,household,account_type,symbol,side,quantity,price\n"
        "2025-01-06,t1,h1,taxable,BND,buy,10,120\n"
        "2025-11-25,t1,h1,taxable,BND,sell,10,100\n"  # a loss 6 days ago
    )
    subs = tmp_path / "subs.txt"
    subs.write_text("BND,AGG\n")
    options = ["--transactions", str(history), *(["--substitutes", str(subs)] * substitute)]
    plain = _propose(tmp_path)["i1"]
    i1 = _propose(tmp_path, *options)["i1"]

    assert "BND" in _buys(plain)
    assert "BND" not in _buys(i1)
    if substitute:
        assert _buys(i1)["AGG"]["amount"] == _buys(plain)["BND"]["amount"]
        assert "AGG bought instead" in i1["reason"]
    else:
        assert i1["cash_after"] == pytest.approx(_buys(plain)["BND"]["amount"])
        assert "its money stays in cash" in i1["reason"]


def test_tlh_harvests_a_loss_into_a_substitute(tmp_path):
    holdings = (
        "account,symbol,quantity,cost_basis,acquired\n"
        "t1,VTI,30,7500,2020-01-02\n"  # 6,000 worth, a loss of 1,500
        "t1,BND,40,4000,2020-01-02\n"
    )
    subs = tmp_path / "subs.txt"
    subs.write_text("VTI,ITOT\n")
    t1 = _propose(
        tmp_path, "--tlh", "--substitutes", str(subs), accounts=LOSS_ACCOUNTS, holdings=holdings
    )["t1"]

    assert _sells(t1)["VTI"]["quantity"] == 30
    assert _buys(t1)["ITOT"]["amount"] == pytest.approx(6000, abs=1)
    assert t1["tax"]["realized_lt"] == -1500
    # t1 is inside its bands: listed because it harvests, not for a breach.
    assert t1["status"] == "inside_tolerance"
    assert (
        "trades only to harvest a loss (inside tolerance, no breach): Sell 30 VTI" in (t1["reason"])
    )


def test_no_harvest_while_another_account_of_the_household_buys_the_security(tmp_path):
    accounts = "account,model,cash,type,household\nt1,m,0,taxable,h1\ni1,m,0,ira,h1\n"
    holdings = (
        "account,symbol,quantity,cost_basis,acquired\n"
        "t1,VTI,30,7500,2020-01-02\nt1,BND,40,4000,2020-01-02\n"  # a harvestable loss
        "i1,VTI,10,1000,2020-01-02\ni1,BND,80,8000,2020-01-02\n"  # the IRA buys VTI
    )
    subs = tmp_path / "subs.txt"
    subs.write_text("VTI,ITOT\n")
    result = _propose(
        tmp_path, "--tlh", "--substitutes", str(subs), accounts=accounts, holdings=holdings
    )

    assert "VTI" in _buys(result["i1"])
    assert "VTI" not in _sells(result["t1"])  # the loss would be lost for good in the IRA
    assert (
        "Not harvested: VTI is bought in this run in IRA account i1 of the household: a loss "
        "now would be a wash sale. Sell 30 VTI in t1"
    ) in result["t1"]["reason"]


def test_the_table_shows_each_accounts_realised_gain_and_tax(tmp_path):
    args = ["propose", *_book(tmp_path), "--tax-aware", *AS_OF, "--lot-method", "hifo"]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    json_t1 = _propose(tmp_path, "--lot-method", "hifo")["t1"]

    header = next(line for line in result.stdout.splitlines() if "reason" in line)
    assert "realised" in header and "est. tax" in header
    row = next(line for line in result.stdout.splitlines() if line.startswith("│ t1 "))
    realised = json_t1["tax"]["realized_st"] + json_t1["tax"]["realized_lt"]
    assert f"{realised:,.2f}" in row and f"{json_t1['tax']['estimated_tax']:,.2f}" in row


def test_household_sells_in_the_ira_and_places_bonds_there(tmp_path):
    accounts = _propose(tmp_path, "--household", "--tax-inefficient", "BND")
    t1, i1 = accounts["t1"], accounts["i1"]

    assert _sells(t1) == {}
    assert t1["tax"]["estimated_tax"] == 0
    assert "VTI" in _sells(i1)
    household = 48000.0
    vti = sum(a["weights_after"]["VTI"] / 100 * a["value"] for a in (t1, i1))
    assert vti == pytest.approx(0.60 * household, rel=1e-3)
    assert i1["weights_after"]["BND"] > 60  # bonds located in the IRA
    for a in (t1, i1):
        assert 0 <= a["cash_after"] < 1  # fully invested
        assert "rebalanced as one portfolio" in a["reason"]


def test_household_inside_its_bands_still_covers_negative_cash(tmp_path):
    accounts = "account,model,cash,type,household\nt1,m,0,taxable,h1\ni1,m,-50,ira,h1\n"
    holdings = (
        "account,symbol,quantity,cost_basis,acquired\n"
        "t1,VTI,20,2000,2020-01-02\nt1,BND,40,4000,2020-01-02\n"
        "i1,VTI,30,3000,2020-01-02\ni1,BND,20,2000,2020-01-02\n"
    )  # household: VTI 62.7 %, BND 37.3 %, inside their bands
    result = _propose(tmp_path, "--household", accounts=accounts, holdings=holdings)

    assert result["i1"]["cash_after"] >= 0
    assert _sells(result["t1"]) == {}


def test_household_too_small_in_iras_rebalances_each_account_alone(tmp_path):
    holdings = (
        "account,symbol,quantity,cost_basis,acquired\n"
        "t1,VTI,100,10000,2020-01-02\ni1,BND,10,1000,2020-01-02\n"
    )  # the taxable account alone holds 95 % of the household in VTI
    result = _propose(tmp_path, "--household", holdings=holdings)

    assert (
        "cannot bring VTI, BND within the bands without sales in taxable accounts"
        in (result["t1"]["reason"])
    )
    assert _sells(result["t1"])["VTI"]["lot"]
    assert result["t1"]["tax"]["method"] == "rule-based"


def test_household_with_different_models_rebalances_each_account_alone(tmp_path):
    models = MODELS + "n,VTI,50\nn,BND,50\n"
    accounts = "account,model,cash,type,household\nt1,m,0,taxable,h1\ni1,n,0,ira,h1\n"
    result = _propose(tmp_path, "--household", models=models, accounts=accounts)

    assert "different models" in result["t1"]["reason"]
    assert _sells(result["t1"])  # rebalanced on its own


def test_a_withdrawal_scheduled_soon_holds_the_rebalance(tmp_path):
    t1 = _propose(tmp_path, "--withdrawal-date", "t1=2025-12-15")["t1"]

    assert t1["trades"] == [] and t1["policy"] is None
    assert "withdrawal is scheduled on 2025-12-15" in t1["reason"]


def test_tax_above_the_benefit_of_closing_drift_shrinks_the_trades(tmp_path):
    t1 = _propose(tmp_path, "--drift-cost", "1")["t1"]  # 1 bp per dollar: drift is cheap

    assert t1["tax"]["estimated_tax"] == 0
    assert "exceeds the benefit" in t1["reason"]


def test_optimizer_highs_keeps_the_bands_and_budget(tmp_path):
    t1 = _propose(tmp_path, "--optimizer", "highs", "--gain-budget", "2000")["t1"]

    assert t1["tax"]["method"] == "optimizer"
    assert t1["tax"]["realized_st"] + t1["tax"]["realized_lt"] <= 2000


def test_csv_output_is_the_tax_aware_order_list(tmp_path):
    args = ["propose", *_book(tmp_path), "--tax-aware", *AS_OF, "--household", "--format", "csv"]
    result = runner.invoke(app, args)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("account,symbol,side,quantity,amount,")
    assert not any(line.startswith("t1,") and ",sell," in line for line in lines)


# -- bad input -------------------------------------------------------------------------------


def _fails(tmp_path: Path, *options: str, code: int = 1, **files: str) -> str:
    out = tmp_path / "out.json"
    args = ["propose", *_book(tmp_path, **files), *AS_OF, "--format", "json", "-o", str(out)]
    result = runner.invoke(app, [*args, *options])
    assert result.exit_code == code, result.output
    assert not out.exists()
    return " ".join(result.output.split())


def test_taxable_lots_without_basis_are_an_input_error_naming_file_and_line(tmp_path):
    holdings = HOLDINGS.replace("t1,BND,40,4000,2020-01-02", "t1,BND,40,,")
    message = _fails(tmp_path, "--tax-aware", holdings=holdings)

    assert "holdings.csv line 4, column cost_basis" in message
    assert "taxable account t1" in message


def test_ira_lots_without_basis_are_fine(tmp_path):
    holdings = HOLDINGS.replace("i1,VTI,100,10000,2020-01-02", "i1,VTI,100,,")
    assert _sells(_propose(tmp_path, holdings=holdings)["i1"])["VTI"]["lot"] == []


def test_a_lot_acquired_after_the_as_of_date_is_an_input_error(tmp_path):
    holdings = HOLDINGS.replace("t1,BND,40,4000,2020-01-02", "t1,BND,40,4000,2026-01-02")
    message = _fails(tmp_path, "--tax-aware", holdings=holdings)

    assert "holdings.csv line 4, column acquired" in message


def test_unknown_lot_method_is_a_command_line_error(tmp_path):
    message = _fails(tmp_path, "--tax-aware", "--lot-method", "newest", code=2)

    assert "newest" in message


def test_bad_transactions_file_is_an_input_error(tmp_path):
    history = tmp_path / "tx.csv"
    history.write_text("date,account,symbol,side,quantity,price\n2025-13-01,a,VTI,buy,1,10\n")
    message = _fails(tmp_path, "--tax-aware", "--transactions", str(history))

    assert "tx.csv line 2" in message


def test_missing_transactions_file_is_an_input_error(tmp_path):
    message = _fails(tmp_path, "--tax-aware", "--transactions", str(tmp_path / "none.csv"))

    assert "file not found" in message


def test_bad_substitutes_file_is_an_input_error(tmp_path):
    subs = tmp_path / "subs.txt"
    subs.write_text("VTI,ITOT\nBND\n")
    message = _fails(tmp_path, "--tax-aware", "--substitutes", str(subs))

    assert "subs.txt line 2" in message


def test_tax_options_need_tax_aware(tmp_path):
    message = _fails(tmp_path, "--lot-method", "hifo", "--gain-budget", "10")

    assert "--lot-method, --gain-budget, --as-of need(s) --tax-aware" in message


def test_tlh_needs_substitutes(tmp_path):
    assert "--tlh needs --substitutes" in _fails(tmp_path, "--tax-aware", "--tlh")


def test_withdrawal_date_of_unknown_account(tmp_path):
    message = _fails(tmp_path, "--tax-aware", "--withdrawal-date", "zz=2025-12-10")

    assert "unknown account(s): zz" in message


def test_flows_work_with_tax_aware(tmp_path):
    t1 = _propose(tmp_path, "--deposit", "t1=1000")["t1"]

    assert t1["pending_cash"] == 1000 and t1["cash_after"] < 5
    assert "deposit of 1,000.00" in t1["reason"]
    assert "unknown account" in _fails(tmp_path, "--tax-aware", "--withdraw", "zz=10")


def test_optimizer_writes_nothing_but_the_json_to_standard_output(tmp_path, capfd):
    """HiGHS prints from C straight to file descriptor 1; none of it may reach a piped JSON."""
    capfd.readouterr()
    result = runner.invoke(
        app,
        [
            "propose",
            *_book(tmp_path),
            "--tax-aware",
            *AS_OF,
            "--optimizer",
            "highs",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)
    leaked = capfd.readouterr()
    assert leaked.out == ""
    assert "HiGHS" not in leaked.err


def test_a_sells_amount_and_its_lots_proceeds_are_the_same_cents(tmp_path):
    """41 shares at 110.835 are 4,544.235: the order's amount and its lots' proceeds round it
    once, the same way (they differed by a cent)."""
    holdings = HOLDINGS + "t1,TIP,20,2000,2020-01-02\nt1,TIP,21,2300,2024-01-02\n"
    prices = PRICES + "TIP,110.835\n"
    t1 = _propose(tmp_path, holdings=holdings, prices=prices)["t1"]
    tip = _sells(t1)["TIP"]
    assert tip["quantity"] == 41
    assert round(sum(lot["proceeds"] for lot in tip["lot"]), 2) == tip["amount"]
