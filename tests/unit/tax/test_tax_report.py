"""Per-account tax report: lots sold, netting, IRA/Roth, wash-sale flags, JSON shape."""

from datetime import date
from decimal import Decimal

from rebal.tax.account_report import account_report, buy_trade, report_json, sell_trade
from rebal.tax.lots import LotMethod, TaxLot
from rebal.tax.rates import AccountType, TaxRates
from rebal.tax.wash_sales import Side, Transaction, WashGuard

D = Decimal
AS_OF = date(2025, 6, 2)
RATES = TaxRates(short_term=D("0.35"), long_term=D("0.15"))
LOTS = [
    TaxLot("old", D(50), D(2000), date(2020, 1, 2)),  # LT gain 2,000 at 80
    TaxLot("new", D(30), D(3000), date(2025, 1, 2)),  # ST loss 600 at 80
]


def test_min_tax_sell_explains_each_lot_and_its_tax() -> None:
    trade, relief = sell_trade(
        "joint", AccountType.TAXABLE, "VTI", LOTS, D(40), D(80), AS_OF, RATES, LotMethod.MIN_TAX
    )
    assert [(s.lot_id, s.quantity) for s in trade.sales] == [("new", D(30)), ("old", D(10))]
    assert trade.marginal_tax == D("-150.00")  # -600 * 35 % + 400 * 15 %
    assert trade.rationale == (
        "Sell 40 VTI by min-tax: 30 of lot new (acquired 2025-01-02, short-term loss 600.00); "
        "10 of lot old (acquired 2020-01-02, long-term gain 400.00); estimated tax saved 150.00."
    )
    assert relief.remaining[0].quantity == D(40)


def test_account_report_nets_short_and_long_term() -> None:
    fifo, _ = sell_trade(
        "joint", AccountType.TAXABLE, "VTI", LOTS, D(80), D(80), AS_OF, RATES, LotMethod.FIFO
    )
    report = account_report("joint", AccountType.TAXABLE, [fifo], RATES)
    assert (report.long_term_gains, report.short_term_losses) == (D(2000), D(600))
    assert report.estimated_tax == D("210.00")  # (2,000 - 600) * 15 %
    doc = report_json(report)
    assert (doc["realized_st"], doc["realized_lt"], doc["estimated_tax"]) == (-600.0, 2000.0, 210.0)
    assert doc["wash_sale_flags"] == []
    assert [lot["lot_id"] for lot in doc["trades"][0]["lot"]] == ["old", "new"]


def test_ira_sells_list_lots_but_realise_nothing() -> None:
    trade, _ = sell_trade(
        "ira", AccountType.IRA, "VTI", LOTS, D(80), D(80), AS_OF, RATES, LotMethod.FIFO
    )
    report = account_report("ira", AccountType.IRA, [trade], RATES)
    assert (report.realized_st, report.realized_lt, report.estimated_tax) == (0, 0, 0)
    assert len(report.lots_sold) == 2
    assert trade.rationale.endswith("no tax in an IRA account.")


def test_trades_that_would_wash_are_flagged() -> None:
    history = [
        Transaction(1, date(2025, 1, 2), "spouse", "smith", AccountType.TAXABLE, "VTI", Side.BUY,
                    D(10), D(1000)),
        Transaction(2, date(2025, 5, 20), "spouse", "smith", AccountType.TAXABLE, "VTI",
                    Side.SELL, D(10), D(800)),
    ]  # fmt: skip
    guard = WashGuard.from_history(history, AS_OF)
    buy = buy_trade(
        "joint", AccountType.TAXABLE, "VTI", D(5), D(80), household="smith", guard=guard
    )
    assert buy.wash_flag is not None and "sold on 2025-05-20 in spouse" in buy.wash_flag
    sell, _ = sell_trade(
        "joint", AccountType.TAXABLE, "VTI", LOTS, D(30), D(80), AS_OF, RATES, LotMethod.HIFO,
        household="smith", guard=WashGuard.from_history(
            [Transaction(1, date(2025, 5, 25), "spouse", "smith", AccountType.TAXABLE, "VTI",
                         Side.BUY, D(1), D(80))], AS_OF),
    )  # fmt: skip
    report = account_report("joint", AccountType.TAXABLE, [sell, buy], RATES)
    assert len(report.wash_sale_flags) == 2
    assert "bought on 2025-05-25 in spouse" in report.wash_sale_flags[0]


def test_rationales_write_numbers_in_plain_digits_with_separators() -> None:
    """Quantities computed as ``2E+1`` or ``1.2E+3`` read as 20 and 1,200, never in scientific
    notation; money in cents with thousands separators."""
    lots = [TaxLot("big", D("1.5E+3"), D("3.0E+4"), date(2020, 1, 2))]  # 1,500 at 20 each
    trade, _ = sell_trade(
        "joint",
        AccountType.TAXABLE,
        "VTI",
        lots,
        D("1.2E+3"),
        D(80),
        AS_OF,
        RATES,
        LotMethod.FIFO,
    )
    assert trade.rationale == (
        "Sell 1,200 VTI by fifo: 1,200 of lot big (acquired 2020-01-02, long-term gain "
        "72,000.00); estimated tax 10,800.00."
    )
    buy = buy_trade("joint", AccountType.TAXABLE, "VTI", D("2E+1"), D(80))
    assert buy.rationale == "Buy 20 VTI: no tax effect."
