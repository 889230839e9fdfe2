"""Order generation as users meet it: share rounding, minimum trade, reserve, restrictions."""

from __future__ import annotations

import numpy as np
import pytest

from rebal.core.bands import BandSpec
from rebal.core.engine import POLICY_NAMES, RunConfig, propose
from rebal.core.trades import TradeRules
from rebal.proposal_output import trades_frame
from rebal.testkit import make_book

MODELS = [("m", "A", "50"), ("m", "B", "50")]
COLUMNS = ("account", "model", "cash", "restricted", "pending_cash")


def _run(holdings, prices, cash="0", restricted="", pending="0", models=MODELS, **config):
    book = make_book(
        models, [("x", "m", cash, restricted, pending)], holdings, prices, account_columns=COLUMNS
    )
    result = propose(book.arrays, RunConfig(**config))
    frame = trades_frame(book, result)
    orders = {
        (r.symbol, r.side): (r.quantity_micro / 1e6, r.amount_cents / 100)
        for r in frame.itertuples(index=False)
    }
    return result, orders


def test_full_rebalance_sells_shares_and_buys_notional_with_six_decimals():
    result, orders = _run(
        [("x", "A", "80"), ("x", "B", "20")], {"A": "10", "B": "3"}, policy="full"
    )
    # Value 860: A to 430 (sell 37 shares), B to 430 (buy 370 at 3 = 123.333333 shares).
    assert orders[("A", "sell")] == (37.0, 370.0)
    assert orders[("B", "buy")] == (123.333333, 370.0)
    assert result.trades.cash_after_cents[0] == 0


def test_whole_shares_never_overspend_and_report_the_leftover_cash():
    result, orders = _run(
        [("x", "A", "80"), ("x", "B", "20")],
        {"A": "10", "B": "7"},
        policy="full",
        rules=TradeRules(whole_shares=True),
    )
    # Value 940 -> 470 each: sell 33 A = 330; buy floor(330 / 7) = 47 B = 329.
    assert orders[("A", "sell")] == (33.0, 330.0)
    assert orders[("B", "buy")] == (47.0, 329.0)
    assert result.trades.cash_after_cents[0] == 100  # 1.00 left over, never negative


def test_trades_below_the_minimum_are_dropped_and_counted():
    result, orders = _run(
        [("x", "A", "51"), ("x", "B", "49")],
        {"A": "1", "B": "1"},
        policy="full",
        all_accounts=True,
        rules=TradeRules(min_trade_cents=500),
    )
    assert orders == {}
    assert result.trades.dropped[0] == 2


def test_cash_reserve_is_kept_aside():
    result, orders = _run([], {"A": "1", "B": "1"}, cash="1000", policy="full", cash_reserve=0.05)
    assert orders[("A", "buy")][1] == orders[("B", "buy")][1] == 475.0
    assert result.trades.cash_after_cents[0] == 5000


def test_restricted_security_is_never_traded_and_its_weight_goes_to_the_others():
    models = [("m", "A", "40"), ("m", "B", "30"), ("m", "C", "30")]
    prices = {"A": "1", "B": "1", "C": "1"}
    holdings = [("x", "A", "100"), ("x", "B", "450"), ("x", "C", "450")]
    _, orders = _run(holdings, prices, restricted="A", models=models, policy="full")
    assert not any(sym == "A" for sym, _ in orders)
    # A stays at 100; B and C share the other 900 in their 30:30 ratio: nothing to do.
    assert orders == {}
    holdings = [("x", "A", "100"), ("x", "B", "600"), ("x", "C", "300")]
    _, orders = _run(holdings, prices, restricted="A", models=models, policy="full")
    assert orders == {("B", "sell"): (150.0, 150.0), ("C", "buy"): (150.0, 150.0)}


def test_withdrawal_sells_the_most_overweight_first_and_never_buys():
    holdings = [("x", "A", "700"), ("x", "B", "300")]
    result, orders = _run(
        holdings, {"A": "1", "B": "1"}, pending="-100", policy="rails", bands=BandSpec(band_rel=0.9)
    )
    assert POLICY_NAMES[result.policy[0]] == "cash-flow"
    assert orders == {("A", "sell"): (100.0, 100.0)}
    assert result.trades.cash_after_cents[0] == 0


def test_tiered_goes_to_rails_on_a_small_breach_and_to_target_on_a_large_one():
    prices = {"A": "1", "B": "1"}
    # 54/46 breaches a 3-point band but not the 6-point wide band: sell A to its rail (51.5).
    _, small = _run(
        [("x", "A", "54"), ("x", "B", "46")],
        prices,
        policy="tiered",
        bands=BandSpec(band_abs=0.03, band_rel=None),
    )
    assert small[("A", "sell")][1] == pytest.approx(2.5)
    # 70/30 breaches the wide band: all the way to 50/50.
    _, large = _run(
        [("x", "A", "70"), ("x", "B", "30")],
        prices,
        policy="tiered",
        bands=BandSpec(band_abs=0.03, band_rel=None),
    )
    assert large[("A", "sell")][1] == pytest.approx(20.0)


def test_liquidation_sells_everything_that_may_be_sold():
    book = make_book(
        MODELS,
        [("x", "m", "5", "B", "0", "true")],
        [("x", "A", "3.5"), ("x", "B", "2")],
        {"A": "10", "B": "10"},
        account_columns=(*COLUMNS, "liquidate"),
    )
    result = propose(book.arrays, RunConfig(policy="rails"))
    frame = trades_frame(book, result)
    assert frame[["symbol", "side", "quantity_micro"]].values.tolist() == [["A", "sell", 3_500_000]]
    assert result.trades.cash_after_cents[0] == 4000


def test_deposit_that_covers_every_shortfall_lands_on_target():
    # 70/30 of 1,000 plus 1,200: targets are 1,100 each, so A buys 400 and B 800.
    holdings = [("x", "A", "700"), ("x", "B", "300")]
    result, orders = _run(holdings, {"A": "1", "B": "1"}, pending="1200", policy="cash-flow")
    assert orders == {("A", "buy"): (400.0, 400.0), ("B", "buy"): (800.0, 800.0)}
    np.testing.assert_allclose(result.weight_after[0], [0.5, 0.5], atol=1e-9)
    assert result.trades.cash_after_cents[0] == 0


def test_large_withdrawal_sells_each_position_down_to_its_new_target():
    # 60/40 of 1,000 less 500: the new targets are 250 each, so A sells 350 and B 150.
    holdings = [("x", "A", "600"), ("x", "B", "400")]
    result, orders = _run(holdings, {"A": "1", "B": "1"}, pending="-500", policy="cash-flow")
    assert orders == {("A", "sell"): (350.0, 350.0), ("B", "sell"): (150.0, 150.0)}
    np.testing.assert_allclose(result.weight_after[0], [0.5, 0.5], atol=1e-9)
    assert result.trades.cash_after_cents[0] == 0
