"""Seed 001's worked examples: the four-ETF rails rebalance and the 100 EUR contribution."""

from __future__ import annotations

import numpy as np

from rebal.core.engine import POLICY_NAMES, RunConfig, propose
from rebal.core.status import Status
from rebal.proposal_output import trades_frame
from rebal.testkit import make_book

PRICES = {"A": 1.0, "B": 1.0, "C": 1.0, "D": 1.0}


def _trades(book, result) -> dict[tuple[str, str], float]:
    frame = trades_frame(book, result)
    return {(r.symbol, r.side): r.amount_cents / 100 for r in frame.itertuples(index=False)}


def test_rails_sells_above_upper_rail_and_buys_below_target_by_relative_distance(four_etfs):
    # B breached its lower band (16 %); A and C sit above their upper rails (44 %, 22 %); D is
    # below target but inside its band. No cash.
    holdings = [("x", "A", "4550"), ("x", "B", "1500"), ("x", "C", "2300"), ("x", "D", "1650")]
    book = make_book(four_etfs, [("x", "m", "0")], holdings, PRICES)

    result = propose(book.arrays, RunConfig(policy="rails"))

    assert Status(result.statuses.status[0]) is Status.OUT_OF_TOLERANCE
    assert POLICY_NAMES[result.policy[0]] == "rails"
    trades = _trades(book, result)
    # Sells bring A and C exactly to their upper rails (44 % and 22 % of 10,000).
    assert trades[("A", "sell")] == 150.00
    assert trades[("C", "sell")] == 100.00
    # The 250 raised is less than B and D need (500 + 350): it is split by relative distance
    # from target, 25 % for B and 17.5 % for D, so B gets more.
    b, d = trades[("B", "buy")], trades[("D", "buy")]
    assert b + d <= 250.00
    assert b > d
    assert abs(b / d - 0.25 / 0.175) < 0.01
    # Nothing is bought past its target, nothing else trades, cash stays non-negative.
    after = result.weight_after[0]
    assert after[1] <= 0.20 and after[3] <= 0.20
    assert set(trades) == {("A", "sell"), ("C", "sell"), ("B", "buy"), ("D", "buy")}
    assert result.trades.cash_after_cents[0] >= 0


def test_contribution_of_100_brings_a_small_portfolio_back_to_target(four_etfs):
    # Weights 42/18/20/20 of 1,000; a deposit of 100 closes every gap exactly.
    holdings = [("x", "A", "420"), ("x", "B", "180"), ("x", "C", "200"), ("x", "D", "200")]
    accounts = [("x", "m", "0", "100")]
    book = make_book(
        four_etfs,
        accounts,
        holdings,
        PRICES,
        account_columns=("account", "model", "cash", "pending_cash"),
    )

    result = propose(book.arrays, RunConfig(policy="rails"))

    assert Status(result.statuses.status[0]) is Status.NEW_DEPOSIT
    assert POLICY_NAMES[result.policy[0]] == "cash-flow"
    trades = _trades(book, result)
    assert trades == {
        ("A", "buy"): 20.0,
        ("B", "buy"): 40.0,
        ("C", "buy"): 20.0,
        ("D", "buy"): 20.0,
    }
    np.testing.assert_allclose(result.weight_after[0], [0.4, 0.2, 0.2, 0.2], atol=1e-9)
    assert result.trades.cash_after_cents[0] == 0


def test_contribution_smaller_than_the_gaps_buys_the_most_underweight_first(four_etfs):
    # Same weights on 10,000: the 100 all goes to B, the only position well below target.
    holdings = [("x", "A", "4200"), ("x", "B", "1800"), ("x", "C", "2000"), ("x", "D", "2000")]
    accounts = [("x", "m", "0", "100")]
    book = make_book(
        four_etfs,
        accounts,
        holdings,
        PRICES,
        account_columns=("account", "model", "cash", "pending_cash"),
    )

    result = propose(book.arrays, RunConfig(policy="rails"))

    assert _trades(book, result) == {("B", "buy"): 100.0}
    assert not (result.trades.sell_micro > 0).any()
