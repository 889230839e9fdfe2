"""Each pre-trade rule on its own: a run that breaks it is blocked with its code and a message
that says why, a run that keeps it passes, and a fact the rule needs that is unknown blocks."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from factbook import LIMITS, NOW, TODAY, account, buy, earlier, market, price, sell

from rebal.compliance.codes import Code
from rebal.compliance.facts import Limits, RealisedLoss
from rebal.compliance.rules import check, orders_of_day
from rebal.domain.ids import AccountId, Symbol
from rebal.domain.money import Money
from rebal.domain.order import OrderState
from rebal.tax.rates import AccountType
from rebal.tax.wash_sales import Side as TaxSide
from rebal.tax.wash_sales import Transaction, WashGuard


def _messages(report, code: Code) -> list[str]:  # type: ignore[no-untyped-def]
    return [v.message for v in report.violations if v.code is code]


def test_clean_run_passes() -> None:
    report = check([sell("BND", "10"), buy("VTI", "500.00")], account(), market(), LIMITS)
    assert report.passed, report.violations
    assert report.to_row()["passed"] is True


def test_market_closed_blocks_a_run() -> None:
    report = check([buy("VTI", "100.00")], account(), market(market_open=False), LIMITS)
    assert report.codes == {Code.MARKET_CLOSED}
    assert _messages(report, Code.MARKET_CLOSED) == [
        "the market is closed at 2026-12-01T19:30:00+00:00"
    ]


def test_market_closed_when_the_calendar_has_no_answer() -> None:
    report = check([], account(), market(market_open=None), LIMITS)
    assert report.codes == {Code.MARKET_CLOSED}
    assert "no market calendar" in _messages(report, Code.MARKET_CLOSED)[0]


def test_account_cannot_trade_blocks_and_unknown_status_blocks() -> None:
    frozen = check([buy("VTI", "100.00")], account(can_trade=False), market(), LIMITS)
    unknown = check([buy("VTI", "100.00")], account(can_trade=None), market(), LIMITS)
    assert frozen.codes == unknown.codes == {Code.ACCOUNT_CANNOT_TRADE}
    assert _messages(unknown, Code.ACCOUNT_CANNOT_TRADE) == ["account A1: trading status unknown"]


def test_unfunded_account_blocks() -> None:
    empty = account(cash=Money(Decimal("0.00")), buying_power=Money(Decimal("0.00")), positions={})
    report = check([], empty, market(), LIMITS)
    assert report.codes == {Code.UNFUNDED}
    assert check([], account(cash=None), market(), LIMITS).codes == {Code.UNFUNDED}


def test_insufficient_buying_power_counts_sell_proceeds() -> None:
    facts = account(buying_power=Money(Decimal("100.00")))
    # 10 BND at 72.50 = 725.00 of proceeds; 825.00 is affordable, 825.01 is not.
    assert check([sell("BND", "10"), buy("VTI", "825.00")], facts, market(), LIMITS).passed
    report = check([sell("BND", "10"), buy("VTI", "825.01")], facts, market(), LIMITS)
    assert report.codes == {Code.INSUFFICIENT_BUYING_POWER}
    assert _messages(report, Code.INSUFFICIENT_BUYING_POWER) == [
        "account A1: buys of 825.01 exceed buying power 100.00 plus sell proceeds 725.00"
    ]


def test_no_buying_power_answer_blocks_buys_only() -> None:
    facts = account(buying_power=None)
    assert check([buy("VTI", "1.00")], facts, market(), LIMITS).codes == {
        Code.INSUFFICIENT_BUYING_POWER
    }
    assert check([sell("VTI", "1")], facts, market(), LIMITS).passed


def test_restricted_security_blocks_buys_and_sells() -> None:
    limits = Limits(restricted=frozenset({Symbol("VTI")}))
    report = check(
        [sell("VTI", "1"), buy("VTI", "10.00"), buy("BND", "10.00")], account(), market(), limits
    )
    assert [v.code for v in report.violations].count(Code.RESTRICTED_SECURITY) == 2
    assert {v.symbol for v in report.violations} == {"VTI"}


def test_position_limit_per_security() -> None:
    # Account value: 10,000 cash + 100 VTI x 250 + 200 BND x 72.50 = 49,500.
    limits = Limits(max_security_weight=Decimal("0.60"))
    assert check([buy("VTI", "4700.00")], account(), market(), limits).passed  # 29,700 = 60 %
    report = check([buy("VTI", "4700.01")], account(), market(), limits)
    assert report.codes == {Code.POSITION_LIMIT}
    assert _messages(report, Code.POSITION_LIMIT) == [
        "VTI would be 60.00% of account A1, above the 60.00% limit per security"
    ]


def test_position_limit_per_issuer_adds_share_classes() -> None:
    limits = Limits(
        max_issuer_weight=Decimal("0.10"),
        issuers={
            Symbol("GOOG"): "Alphabet",
            Symbol("GOOGL"): "Alphabet",
            Symbol("VTI"): "Vanguard",
        },
    )
    facts = account(positions={Symbol("GOOG"): Decimal("20"), Symbol("VTI"): Decimal("100")})
    # Value: 10,000 + 20 x 170 + 25,000 = 38,400; 10 % is 3,840; GOOG holds 3,400.
    assert check([buy("GOOGL", "440.00")], facts, market(), limits).passed
    report = check([buy("GOOGL", "441.00")], facts, market(), limits)
    assert report.codes == {Code.POSITION_LIMIT}
    assert "issuer Alphabet would be" in _messages(report, Code.POSITION_LIMIT)[0]


def test_position_limit_blocks_a_buy_whose_issuer_is_unknown() -> None:
    limits = Limits(max_issuer_weight=Decimal("0.50"))
    report = check([buy("BND", "1.00")], account(), market(), limits)
    assert _messages(report, Code.POSITION_LIMIT) == [
        "issuer of BND unknown: the issuer limit cannot be checked"
    ]


def test_short_sale_blocks_selling_more_than_held() -> None:
    assert check([sell("BND", "200")], account(), market(), LIMITS).passed
    report = check([sell("BND", "150"), sell("BND", "50.5")], account(), market(), LIMITS)
    assert report.codes == {Code.SHORT_SALE}
    assert _messages(report, Code.SHORT_SALE) == [
        "selling 200.5 BND with 200 held would sell short"
    ]
    assert check([sell("TSLA", "1")], account(), market(), LIMITS).codes == {Code.SHORT_SALE}


def test_stale_price_blocks_old_and_missing_quotes() -> None:
    limits = Limits(max_price_age=timedelta(minutes=15))
    prices = dict(market().prices)
    prices[Symbol("VTI")] = price("VTI", "250.00", NOW - timedelta(minutes=15))
    assert check([buy("VTI", "10.00")], account(), market(prices=prices), limits).passed
    prices[Symbol("VTI")] = price("VTI", "250.00", NOW - timedelta(minutes=15, seconds=1))
    del prices[Symbol("BND")]
    report = check(
        [buy("VTI", "10.00"), sell("BND", "1")], account(), market(prices=prices), limits
    )
    assert Code.STALE_PRICE in report.codes
    assert _messages(report, Code.STALE_PRICE) == [
        "the price of VTI is from 2026-12-01T19:14:59+00:00, older than 0:15:00",
        "no price for BND",
    ]


def test_wash_sale_blocks_a_buy_after_a_household_loss() -> None:
    def trade(line: int, day: date, acct: str, side: TaxSide, qty: str, amount: str) -> Transaction:
        return Transaction(
            line, day, acct, "H1", AccountType.TAXABLE, "VTI", side, Decimal(qty), Decimal(amount)
        )

    # The spouse's account sold VTI at a loss of 500 on 2026-11-10, 21 days ago.
    history = [
        trade(1, date(2026, 6, 1), "SPOUSE", TaxSide.BUY, "10", "3000"),
        trade(2, date(2026, 11, 10), "SPOUSE", TaxSide.SELL, "10", "2500"),
    ]
    guard = WashGuard.from_history(history, TODAY)
    report = check([buy("VTI", "100.00")], account(wash_guard=guard), market(), LIMITS)
    assert report.codes == {Code.WASH_SALE}
    assert _messages(report, Code.WASH_SALE) == [
        "buying VTI would wash the loss of 500 realised selling VTI in account SPOUSE on 2026-11-10"
    ]
    # 31 days after the loss sale, the buy is free; without the history, it is blocked.
    later = WashGuard.from_history(history, date(2026, 12, 11))
    assert check([buy("VTI", "100.00")], account(wash_guard=later), market(), LIMITS).passed
    unknown = check([buy("VTI", "1.00")], account(wash_guard=None), market(), LIMITS)
    assert unknown.codes == {Code.WASH_SALE}


def test_wash_sale_blocks_a_buy_after_a_recorded_loss_of_the_symbol_or_its_group() -> None:
    guard = WashGuard.from_history([], TODAY, [{"GOOG", "GOOGL"}])
    loss = RealisedLoss(AccountId("SPOUSE"), Symbol("GOOG"), date(2026, 11, 10), Decimal("12.34"))
    facts = account(wash_guard=guard, realised_losses=(loss,))
    report = check([buy("GOOGL", "100.00"), buy("VTI", "100.00")], facts, market(), LIMITS)
    assert report.codes == {Code.WASH_SALE}
    assert _messages(report, Code.WASH_SALE) == [
        "buying GOOGL would wash the loss of 12.34 realised selling GOOG in account SPOUSE"
        " on 2026-11-10"
    ]
    assert [v.symbol for v in report.violations] == [Symbol("GOOGL")]


def test_pattern_day_trade_within_one_run_blocks() -> None:
    report = check([sell("VTI", "1"), buy("VTI", "100.00")], account(), market(), LIMITS)
    assert report.codes == {Code.PATTERN_DAY_TRADE}
    assert _messages(report, Code.PATTERN_DAY_TRADE) == [
        "VTI would be bought and sold in one trading day"
    ]


def test_pattern_day_trade_against_earlier_run_blocks() -> None:
    morning = (earlier(buy("BND", "300.00")),)
    report = check([sell("BND", "5")], account(day_orders=morning), market(), LIMITS)
    assert report.codes == {Code.PATTERN_DAY_TRADE}
    assert _messages(report, Code.PATTERN_DAY_TRADE) == [
        "BND would be bought and sold in one trading day against an earlier run's buy"
    ]
    assert check([sell("BND", "5")], account(day_orders=None), market(), LIMITS).codes == {
        Code.PATTERN_DAY_TRADE
    }


def test_rejected_earlier_order_is_not_a_day_trade() -> None:
    refused = (earlier(buy("BND", "300.00"), OrderState.REJECTED),)
    assert check([sell("BND", "5")], account(day_orders=refused), market(), LIMITS).passed
    unfilled = (earlier(buy("BND", "300.00"), OrderState.EXPIRED),)
    assert check([sell("BND", "5")], account(day_orders=unfilled), market(), LIMITS).passed


def test_orders_of_day_are_those_sent_since_the_previous_close() -> None:
    previous_close = NOW - timedelta(hours=22, minutes=30)  # Monday 16:00 ET
    yesterday = earlier(buy("BND", "1.00"), at=previous_close)
    overnight = earlier(buy("BND", "1.00"), at=previous_close + timedelta(hours=1))
    unsent = buy("VTI", "1.00")
    assert orders_of_day([yesterday, overnight, unsent], previous_close, NOW) == (overnight,)


def test_every_violation_is_collected() -> None:
    limits = Limits(restricted=frozenset({Symbol("TSLA")}))
    facts = account(can_trade=False, buying_power=Money(Decimal("0.00")), day_orders=None)
    # 3 TSLA at 400 bring 1,200 of proceeds, short of the 2,000 bought.
    report = check(
        [sell("TSLA", "3"), buy("VTI", "2000.00")], facts, market(market_open=False), limits
    )
    assert report.codes == {
        Code.MARKET_CLOSED,
        Code.ACCOUNT_CANNOT_TRADE,
        Code.INSUFFICIENT_BUYING_POWER,
        Code.RESTRICTED_SECURITY,
        Code.SHORT_SALE,
        Code.PATTERN_DAY_TRADE,
    }
    assert not report.passed


def test_orders_of_another_account_are_refused() -> None:
    stranger = replace(buy("VTI", "1.00"), account=AccountId("B2"))
    with pytest.raises(ValueError, match="not of account A1"):
        check([stranger], account(), market(), LIMITS)
