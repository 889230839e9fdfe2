"""A cash reserve as users meet it: drift, statuses and orders measure against the same
reserve-adjusted targets, and an account short of its reserve says so."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebal.core.bands import BandSpec
from rebal.core.engine import POLICY_NAMES, Proposal, RunConfig, propose
from rebal.core.reserve import reserve_targets
from rebal.core.status import Reason, Status, Unresolved
from rebal.core.trades import TradeRules
from rebal.io.book_arrays import Book
from rebal.proposal_output import reasons
from rebal.testkit import make_book

MODEL = [("m", "VTI", "60"), ("m", "BND", "40")]
PRICES = {"VTI": "100", "BND": "100"}
ABS_5 = BandSpec(band_abs=0.05, band_rel=None)


def _book(cash: str, vti: str, bnd: str, models=MODEL) -> Book:
    return make_book(models, [("x", "m", cash)], [("x", "VTI", vti), ("x", "BND", bnd)], PRICES)


def _run(book: Book, **config: object) -> Proposal:
    return propose(book.arrays, RunConfig(**config))  # type: ignore[arg-type]


def test_an_account_at_its_reserve_adjusted_targets_is_inside_tolerance():
    # 54/36 of a 60/40 model and 10 % cash: exactly what a 10 % reserve asks for.
    result = _run(_book("1000", "54", "36"), cash_reserve=0.10, bands=ABS_5)

    assert Status(result.statuses.status[0]) is Status.INSIDE_TOLERANCE
    np.testing.assert_allclose(result.drift.target[0], [0.54, 0.36])
    np.testing.assert_allclose(result.drift.drift[0], [0.0, 0.0], atol=1e-12)
    assert result.drift.cash_target[0] == pytest.approx(0.10)
    assert not result.traded[0]


def test_a_fully_invested_account_is_short_of_its_reserve_and_raises_it():
    book = _book("0", "60", "40")

    result = _run(book, cash_reserve=0.10)

    assert Status(result.statuses.status[0]) is Status.OUT_OF_TOLERANCE
    assert Reason(result.statuses.reason[0]) is Reason.RESERVE_SHORT
    assert reasons(book, result)[0] == (
        "cash at 0.00% is short of the 10.00% cash reserve (tolerated down to 8.00%)"
    )
    assert result.trades.cash_after_cents[0] == 100_000  # 10 % of 10,000 raised
    np.testing.assert_allclose(result.weight_after[0], [0.54, 0.36])


def test_a_breach_and_a_short_reserve_are_both_said():
    # With a 5-point band around 54/36, VTI at 60 % is itself out of band.
    book = _book("0", "60", "40")

    result = _run(book, cash_reserve=0.10, bands=ABS_5)

    assert Reason(result.statuses.reason[0]) is Reason.BREACH
    assert reasons(book, result)[0] == (
        "VTI at 60.00% is outside its band 49.00%–59.00% (target 54.00%); cash at 0.00% is "
        "short of the 10.00% cash reserve (tolerated down to 5.00%)"
    )


def test_cash_above_the_reserve_is_not_out_of_tolerance_by_itself():
    result = _run(_book("1500", "51", "34"), cash_reserve=0.10)
    assert Status(result.statuses.status[0]) is Status.INSIDE_TOLERANCE


def test_a_reserve_within_the_models_cash_weight_changes_nothing():
    models = [("m", "VTI", "48"), ("m", "BND", "32"), ("m", "CASH", "20")]
    book = _book("2000", "50", "30", models)
    without, within = _run(book), _run(book, cash_reserve=0.15)
    np.testing.assert_array_equal(within.drift.target, without.drift.target)
    np.testing.assert_array_equal(within.trades.buy_cents, without.trades.buy_cents)
    np.testing.assert_array_equal(within.statuses.status, without.statuses.status)


def test_a_reserve_above_the_models_cash_weight_scales_the_securities_down():
    # CASH 20 % in the model, 30 % kept: 48/32 become 42/28; the CASH row's band is around 30 %.
    models = [("m", "VTI", "48"), ("m", "BND", "32"), ("m", "CASH", "20")]
    result = _run(_book("3000", "42", "28", models), cash_reserve=0.30)
    np.testing.assert_allclose(result.drift.target[0], [0.42, 0.28])
    assert (result.drift.cash_low[0], result.drift.cash_high[0]) == pytest.approx((0.24, 0.36))
    assert Status(result.statuses.status[0]) is Status.INSIDE_TOLERANCE
    np.testing.assert_allclose(
        reserve_targets(np.array([[0.48, 0.32]]), np.array([0.2]), 0.30), [[0.42, 0.28]]
    )


@st.composite
def reserved_books(draw: st.DrawFn) -> tuple[Book, RunConfig]:
    """Accounts of a few securities, some models with a CASH row, a reserve for the run."""
    n_sec = draw(st.integers(2, 4))
    symbols = ("AAA", "BBB", "CCC", "DDD")[:n_sec]
    cash_weight = draw(st.sampled_from([None, 5, 20]))
    invested = 100 - (cash_weight or 0)
    cuts = draw(
        st.lists(st.integers(1, invested - 1), min_size=n_sec - 1, max_size=n_sec - 1, unique=True)
    )
    weights = np.diff([0, *sorted(cuts), invested])
    models = [("m", s, str(w)) for s, w in zip(symbols, weights, strict=True)]
    if cash_weight is not None:
        models.append(("m", "CASH", str(cash_weight)))
    prices = {s: str(draw(st.decimals("1", "500", places=2))) for s in symbols}
    accounts, holdings = [], []
    for a in range(draw(st.integers(1, 4))):
        accounts.append((f"acc{a}", "m", str(draw(st.decimals("0", "30000", places=2)))))
        for sym in draw(st.lists(st.sampled_from(symbols), min_size=1, unique=True)):
            holdings.append((f"acc{a}", sym, str(draw(st.decimals("1", "1000", places=3)))))
    book = make_book(models, accounts, holdings, prices)
    config = RunConfig(
        policy=draw(st.sampled_from(["full", "bands", "rails", "tiered"])),
        bands=draw(st.sampled_from([BandSpec(band_rel=0.2), ABS_5])),
        cash_reserve=draw(st.sampled_from([0.0, 0.05, 0.10, 0.30])),
        all_accounts=True,
        rules=TradeRules(min_trade_cents=1),
    )
    return book, config


@settings(max_examples=100, deadline=None)
@given(reserved_books())
def test_after_its_orders_an_account_is_inside_tolerance_of_the_same_targets(case):
    """Drift, statuses and orders measure against the same targets: an account that traded to
    its bands, measured again after its orders, needs nothing more."""
    book, config = case
    a = book.arrays
    result = propose(a, config)
    t = result.trades
    after = replace(
        a,
        quantity_micro=a.quantity_micro - t.sell_micro + t.buy_micro,
        cash_cents=t.cash_after_cents,
    )
    again = propose(after, replace(config, trade=False, all_accounts=False))
    value = result.drift.total
    done = result.traded & (result.unresolved == Unresolved.NONE) & (value > 10_000)
    assert (result.policy[done] == POLICY_NAMES.index(config.policy)).all()
    assert (again.statuses.status[done] == Status.INSIDE_TOLERANCE).all(), reasons(
        replace(book, arrays=after), again, np.flatnonzero(done)
    )
