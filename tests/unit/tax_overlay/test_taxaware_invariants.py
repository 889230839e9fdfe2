"""Tax-aware proposals keep the core's promises on random books (Hypothesis, via the Python API):
no short sales, restricted securities untouched, no buy spends cash the account does not have;
and the tax options hold: no short-term gain sold when forbidden, no net gain past the budget,
IRA and Roth accounts taxed nothing."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rebal.api import propose

SYMBOLS = ("AAA", "BBB", "CCC")
AS_OF = date(2025, 12, 1)


@st.composite
def books(draw: st.DrawFn) -> dict:
    w1 = draw(st.integers(10, 70))
    w2 = draw(st.integers(10, 90 - w1))
    models = pd.DataFrame({"model": "m", "symbol": SYMBOLS, "weight": [w1, w2, 100 - w1 - w2]})
    prices = {s: draw(st.integers(500, 50_000)) / 100 for s in (*SYMBOLS, "SUB")}
    accounts, holdings = [], []
    for a in range(draw(st.integers(1, 3))):
        name = f"a{a}"
        kind = draw(st.sampled_from(["taxable", "taxable", "ira", "roth"]))
        flow = draw(st.sampled_from([0, 0, 0, 1, -1])) * draw(st.integers(100, 500_000))
        restricted = draw(st.sampled_from(["", "", "AAA", "CCC"]))
        accounts.append(
            {
                "account": name,
                "model": "m",
                "cash": f"{draw(st.integers(0, 500_000)) / 100:.2f}",
                "type": kind,
                "household": "h",
                "restricted": restricted,
                "pending_cash": f"{flow / 100:.2f}",
            }
        )
        for symbol in SYMBOLS:
            for _ in range(draw(st.integers(0, 3))):
                quantity = draw(st.integers(1, 200_000_000)) / 1_000_000
                cost = quantity * prices[symbol] * draw(st.floats(0.3, 2.0))
                holdings.append(
                    {
                        "account": name,
                        "symbol": symbol,
                        "quantity": f"{quantity:.6f}",
                        "cost_basis": f"{cost:.2f}",
                        "acquired": str(AS_OF - timedelta(days=draw(st.integers(0, 2500)))),
                    }
                )
    if not holdings:
        holdings.append(
            {
                "account": "a0",
                "symbol": "AAA",
                "quantity": "1",
                "cost_basis": "1",
                "acquired": "2020-01-02",
            }
        )
    options = {
        "lot_method": draw(st.sampled_from(["min-tax", "hifo", "fifo", "lifo", "average"])),
        "gain_budget": draw(st.sampled_from([None, 0, 250, 5000])),
        "no_short_term_gains": draw(st.booleans()),
        "household": draw(st.booleans()),
        "tlh": draw(st.booleans()),
        "substitutes": [("AAA", "SUB")],
        "whole_shares": draw(st.booleans()),
        "drift_cost": draw(st.sampled_from([None, 50])),
        "optimizer": draw(st.sampled_from(["rules", "rules", "rules", "highs"])),
    }
    return {
        "tables": (
            models,
            pd.DataFrame(accounts),
            pd.DataFrame(holdings).drop_duplicates(),  # equal rows are an input error
            pd.DataFrame({"symbol": list(prices), "price": [f"{p:.2f}" for p in prices.values()]}),
        ),
        "options": options,
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(books())
def test_tax_aware_proposals_keep_the_invariants(case):
    options = case["options"]
    result = propose(*case["tables"], tax_aware=True, as_of=AS_OF, **options)
    arrays, trades = result.book.arrays, result.proposal.trades

    assert (trades.sell_micro <= arrays.quantity_micro).all()  # no short sales
    assert (trades.sell_micro >= 0).all() and (trades.buy_cents >= 0).all()
    frozen = arrays.restricted
    assert not (trades.sell_micro[frozen] > 0).any() and not (trades.buy_cents[frozen] > 0).any()
    spent = trades.buy_cents.sum(axis=1) > 0
    assert (trades.cash_after_cents[spent] >= 0).all()  # buys never overspend
    means = (arrays.cash_cents >= 0) & (arrays.cash_cents + arrays.pending_cents >= 0)
    assert (trades.cash_after_cents[means] >= 0).all()

    accounts = result.book.accounts
    for i, kind in enumerate(accounts["type"]):
        tax = result.tax_aware.annotation(i).tax
        note = result.tax_aware.annotation(i).note or ""
        if kind != "taxable":
            assert tax["estimated_tax"] == 0
            continue
        planned = tax["method"] in ("rule-based", "optimizer")
        event(f"method {tax['method']}")
        owes = arrays.cash_cents[i] + arrays.pending_cents[i] < 0 or "cash owed" in note
        if not planned or owes:
            continue
        if options["no_short_term_gains"]:
            assert tax["short_term_gains"] == 0
        budget = options["gain_budget"]
        if budget is not None:
            net = Decimal(str(tax["realized_st"])) + Decimal(str(tax["realized_lt"]))
            assert net <= budget + Decimal("0.01")


def test_without_tax_options_the_api_is_unchanged():
    models = pd.DataFrame({"model": "m", "symbol": ["AAA", "BBB"], "weight": [50, 50]})
    accounts = pd.DataFrame({"account": ["a"], "model": ["m"], "cash": ["0"]})
    holdings = pd.DataFrame({"account": ["a"], "symbol": ["AAA"], "quantity": ["10"]})
    prices = pd.DataFrame({"symbol": ["AAA", "BBB"], "price": ["10", "10"]})

    result = propose(models, accounts, holdings, prices)

    assert result.tax is None and result.tax_aware is None
    assert np.array_equal(result.trades["side"].to_numpy(), ["sell", "buy"])


@pytest.mark.parametrize("optimizer", ["rules", "highs"])
def test_no_gain_is_offset_by_a_loss_the_minimum_trade_drops(optimizer):
    """The flaky case of the property above, made certain: with a zero gain budget, AAA's gain
    may only be realised against a loss, and the one loss is DDD's 0.005-share lot, worth 0.50:
    a sale the minimum trade (1.00) drops. Planning on it realised 0.50 of gain."""
    models = pd.DataFrame(
        {"model": "m", "symbol": ["AAA", "BBB", "CCC", "DDD"], "weight": [40, 30, 25, 5]}
    )
    accounts = pd.DataFrame(
        [{"account": "a0", "model": "m", "cash": "0", "type": "taxable", "household": "h"}]
    )
    lots = [("AAA", "65", "5850"), ("BBB", "20", "2000"), ("CCC", "10", "1000")]
    lots += [("DDD", "5", "400"), ("DDD", "0.005", "1.00")]
    holdings = pd.DataFrame(
        [
            {"account": "a0", "symbol": s, "quantity": q, "cost_basis": c, "acquired": "2020-01-02"}
            for s, q, c in lots
        ]
    )
    prices = pd.DataFrame({"symbol": ["AAA", "BBB", "CCC", "DDD"], "price": ["100"] * 4})

    result = propose(
        models,
        accounts,
        holdings,
        prices,
        tax_aware=True,
        as_of=AS_OF,
        gain_budget=0,
        optimizer=optimizer,
    )

    tax = result.tax_aware.annotation(0).tax
    assert tax.get("realized_st", 0) + tax.get("realized_lt", 0) <= 0
