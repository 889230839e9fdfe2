"""Tax-loss harvesting: thresholds, substitutes from equivalence groups, wash-sale safety."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from rebal.tax.harvest import HarvestRules, HeldLot, harvest_candidates
from rebal.tax.lots import TaxLot
from rebal.tax.rates import AccountType, TaxRates
from rebal.tax.wash_sales import Side, Transaction, WashGuard

D = Decimal
AS_OF = date(2025, 6, 2)
RATES = TaxRates(short_term=D("0.35"), long_term=D("0.15"))
TOTAL_MARKET = [["VTI", "ITOT", "SCHB"]]
PRICES = {"VTI": D(80), "ITOT": D(40), "SCHB": D(20), "BND": D(70)}


def held(
    lot_id: str,
    quantity: int,
    basis: int,
    acquired: date,
    symbol: str = "VTI",
    account: str = "joint",
    account_type: AccountType = AccountType.TAXABLE,
) -> HeldLot:
    return HeldLot(
        "smith", account, account_type, symbol, TaxLot(lot_id, D(quantity), D(basis), acquired)
    )


LOTS = [
    held("a", 100, 10000, date(2023, 1, 5)),  # LT loss 2,000 (20 %)
    held("b", 100, 7000, date(2023, 2, 5)),  # gain
    held("c", 10, 820, date(2023, 3, 5)),  # loss 20: 2.4 %, under the 5 % lot threshold
    held("i", 100, 10000, date(2023, 1, 5), account="ira", account_type=AccountType.IRA),
]


def tx(
    line: int, day: date, side: Side, symbol: str, quantity: int, amount: int, **kw: str
) -> Transaction:
    return Transaction(
        line, day, kw.get("account", "joint"), "smith", AccountType.TAXABLE, symbol, side,
        D(quantity), D(amount), kw.get("lot_id"),
    )  # fmt: skip


def test_harvests_the_losing_lot_into_the_first_substitute() -> None:
    (candidate,) = harvest_candidates(LOTS, PRICES, AS_OF, RATES, substitutes=TOTAL_MARKET)
    assert candidate.actionable
    assert [(s.lot_id, s.quantity) for s in candidate.sales] == [("a", D(100))]
    assert (candidate.loss, candidate.proceeds, candidate.substitute) == (D(2000), D(8000), "ITOT")
    assert candidate.tax_value == D("300.00")  # long-term loss at 15 %
    assert "buy 8,000.00 of ITOT" in candidate.rationale
    assert f"before {AS_OF + timedelta(days=31)}" in candidate.rationale


def test_amount_threshold_is_per_position() -> None:
    rules = HarvestRules(min_loss=D(2001))
    assert harvest_candidates(LOTS, PRICES, AS_OF, RATES, rules=rules) == []


def test_recent_purchase_in_the_household_blocks_the_harvest() -> None:
    buy = tx(1, AS_OF - timedelta(days=12), Side.BUY, "VTI", 5, 400, account="spouse")
    guard = WashGuard.from_history([buy], AS_OF)
    (candidate,) = harvest_candidates(
        LOTS, PRICES, AS_OF, RATES, substitutes=TOTAL_MARKET, guard=guard
    )
    assert not candidate.actionable
    assert "bought on 2025-05-21 in account spouse" in str(candidate.blocked)
    old = tx(1, AS_OF - timedelta(days=31), Side.BUY, "VTI", 5, 400, account="spouse")
    guard = WashGuard.from_history([old], AS_OF)
    (candidate,) = harvest_candidates(
        LOTS, PRICES, AS_OF, RATES, substitutes=TOTAL_MARKET, guard=guard
    )
    assert candidate.actionable


def test_selling_the_recent_lot_itself_is_not_a_wash() -> None:
    recent = AS_OF - timedelta(days=10)
    lots = [held("new", 100, 10000, recent)]
    bought = tx(1, recent, Side.BUY, "VTI", 100, 10000, lot_id="new")
    guard = WashGuard.from_history([bought], AS_OF)
    (candidate,) = harvest_candidates(
        lots, PRICES, AS_OF, RATES, substitutes=TOTAL_MARKET, guard=guard
    )
    assert candidate.actionable
    assert candidate.tax_value == D("700.00")  # short-term loss at 35 %


def test_substitute_sold_at_a_loss_recently_is_skipped() -> None:
    history = [
        tx(1, date(2025, 1, 2), Side.BUY, "ITOT", 10, 500),
        tx(2, AS_OF - timedelta(days=5), Side.SELL, "ITOT", 10, 400),
    ]
    guard = WashGuard.from_history(history, AS_OF)
    (candidate,) = harvest_candidates(
        LOTS, PRICES, AS_OF, RATES, substitutes=TOTAL_MARKET, guard=guard
    )
    assert candidate.substitute == "SCHB"
    history.append(tx(3, AS_OF - timedelta(days=4), Side.BUY, "SCHB", 10, 300))
    history.append(tx(4, AS_OF - timedelta(days=3), Side.SELL, "SCHB", 10, 200))
    guard = WashGuard.from_history(history, AS_OF)
    (candidate,) = harvest_candidates(
        LOTS, PRICES, AS_OF, RATES, substitutes=TOTAL_MARKET, guard=guard
    )
    assert candidate.substitute is None
    assert candidate.blocked == (
        "no wash-safe substitute: ITOT was sold at a loss on 2025-05-28; "
        "SCHB was sold at a loss on 2025-05-30"
    )


def test_one_run_never_buys_what_it_sells_at_a_loss() -> None:
    lots = [
        held("a", 100, 10000, date(2023, 1, 5)),  # VTI loss 2,000
        held("t", 100, 5000, date(2023, 1, 5), symbol="ITOT", account="spouse"),  # loss 1,000
    ]
    first, second = harvest_candidates(lots, PRICES, AS_OF, RATES, substitutes=TOTAL_MARKET)
    assert (first.symbol, first.substitute) == ("VTI", "ITOT")
    assert second.symbol == "ITOT" and not second.actionable
    assert second.blocked == "ITOT is bought as a substitute in this run"


def test_without_substitute_the_loss_is_reported_not_harvested() -> None:
    (candidate,) = harvest_candidates(LOTS, PRICES, AS_OF, RATES)
    assert candidate.blocked == "no substitute configured for VTI"
    assert candidate.rationale.startswith("Not harvested: no substitute configured for VTI.")


def test_missing_price_is_an_error() -> None:
    with pytest.raises(ValueError, match="no price for VTI"):
        harvest_candidates(LOTS, {}, AS_OF, RATES)
