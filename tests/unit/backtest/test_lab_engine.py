"""The lab takes the live engine's decisions: status, policy (with the cash-flow fallback),
destination and orders, from the one step :func:`rebal.core.engine.step_rows`.

A review of the lab is compared with ``propose`` on the same one-account book: the same policy
and the same orders, to the micro-share and the cent.
"""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from labbook import one_account

from rebal.backtest.engine import _account_inputs, _review
from rebal.backtest.history import PriceHistory
from rebal.backtest.schedule import ScheduleSpec
from rebal.backtest.sweep import run_lab
from rebal.backtest.variants import CORE_POLICY, Variant
from rebal.core.bands import BandParams, BandSpec, resolve_band_params
from rebal.core.book import BookArrays
from rebal.core.engine import (
    NO_POLICY,
    POLICY_NAMES,
    RunConfig,
    propose,
    step_outputs,
    step_scratch,
)
from rebal.core.trades import TradeRules


def lab_review(
    book: BookArrays, spec: BandSpec, policy: str, due: bool, rules: TradeRules
) -> tuple[int, tuple[np.ndarray, ...]]:
    """One review of the lab on ``book``'s single account: the policy that traded and the
    orders (sold micro-shares, their cents, bought cents, bought micro-shares)."""
    k = book.symbol.shape[1]
    inputs = _account_inputs(k)
    inputs.quantity_micro[:], inputs.price[:] = book.quantity_micro, book.price
    inputs.model_target[:] = book.target
    inputs.cash_cents[:], inputs.pending_cents[:] = book.cash_cents, book.pending_cents
    params = resolve_band_params(spec, (1, k))
    for width, name in zip(inputs.band_widths, BandParams.__slots__, strict=True):
        width[:] = getattr(params, name)
    outputs = step_outputs(1, k, False)
    name = CORE_POLICY[policy]
    code = NO_POLICY if name is None else POLICY_NAMES.index(name)
    chosen, _, _, _ = _review(
        inputs,
        outputs,
        step_scratch(k),
        (code, due),
        (0.0, 0.0),
        rules.as_kernel_args(),
        np.empty(k),
    )
    orders = (outputs.sell_micro, outputs.sell_cents, outputs.buy_cents, outputs.buy_micro)
    return chosen, tuple(a.copy() for a in orders)


def live(
    book: BookArrays, spec: BandSpec, policy: str, due: bool, rules: TradeRules
) -> tuple[int, tuple[np.ndarray, ...]]:
    """``propose`` on ``book``: a due review of a calendar policy trades every account; between
    reviews only the cash-flow policy runs."""
    name = CORE_POLICY[policy] if due else "cash-flow"
    assert name is not None
    config = RunConfig(policy=name, bands=spec, rules=rules, all_accounts=due and name == "full")
    result = propose(book, config)
    t = result.trades
    return int(result.policy[0]), (t.sell_micro, t.sell_cents, t.buy_cents, t.buy_micro)


def test_a_deposit_goes_where_propose_puts_it() -> None:
    """66/34 against 60/40, a 20 % relative band, a deposit of 100, rails: no band is breached,
    so the deposit goes by the cash-flow policy, all of it into the underweight position, in
    the lab as in ``propose`` (it used to be placed pro rata, leaving the weights at 66/34)."""
    rise = 0.66 * 0.4 / (0.6 * 0.34)  # AAA's price move that takes 60/40 to 66/34
    dates = np.array(["2020-01-02", "2020-01-03", "2020-01-06"], dtype="datetime64[D]")
    prices = np.array([[100.0, 100.0], [100.0 * rise, 100.0], [100.0 * rise, 100.0]])
    history = PriceHistory(dates, ("AAA", "BBB"), prices, "example")
    variant = Variant("rails", BandSpec(band_rel=0.2), ScheduleSpec("daily"))
    run = run_lab(
        history,
        [variant],
        np.array([0.6, 0.4]),
        initial=10_000.0,
        flows=np.array([0.0, 100.0, 0.0]),
        record_weights=True,
    )
    weights = run.result.weights
    assert weights is not None
    np.testing.assert_allclose(weights[0, 1], [0.66, 0.34], atol=1e-6)
    # 4,000.00 of BBB (34 %) and the 100 deposit, of 4,000 / 0.34 + 100 in all.
    np.testing.assert_allclose(weights[0, 2, 1], 4_100.0 / (4_000.0 / 0.34 + 100.0), atol=1e-6)
    assert run.result.events[0] == 0  # the cash-flow fallback is not a rails trade
    # propose on the state of the lab before the deposit places it the same way.
    book = one_account(
        np.array([60_000_000, 40_000_000]), prices[1], np.array([0.6, 0.4]), 0, 10_000
    )
    result = propose(book, RunConfig(policy="rails", bands=BandSpec(band_rel=0.2)))
    assert POLICY_NAMES[int(result.policy[0])] == "cash-flow"
    assert result.trades.buy_cents[0].tolist() == [0, 10_000]


@settings(max_examples=200, deadline=None)
@given(
    k=st.integers(min_value=2, max_value=5),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    policy=st.sampled_from(["calendar", "threshold", "hybrid", "rails", "tiered", "cash-flow"]),
    due=st.booleans(),
    band=st.sampled_from(
        [
            BandSpec(band_rel=0.2),
            BandSpec(band_abs=0.05, band_rel=None),
            BandSpec(band_abs=0.03, band_rel=0.1, rail_abs=0.01),
            BandSpec(band_rel=0.1, wide_rel=0.3),
        ]
    ),
    flow=st.sampled_from([0, 1, 10_000, 250_000, -5_000, -200_000]),
    rules=st.sampled_from(
        [TradeRules(), TradeRules(min_trade_cents=0), TradeRules(whole_shares=True)]
    ),
)
def test_one_lab_review_trades_as_propose(
    k: int, seed: int, policy: str, due: bool, band: BandSpec, flow: int, rules: TradeRules
) -> None:
    # Between reviews, with no cash flow, the lab does not step the account at all (nothing is
    # due: no trigger, no cash event), so there is nothing to compare.
    assume(due or flow != 0)
    rng = np.random.default_rng(seed)
    target = rng.dirichlet(np.ones(k))
    price = np.round(rng.uniform(5.0, 500.0, k), 2)
    value = target * rng.lognormal(0.0, 0.4, k) * rng.uniform(1_000.0, 100_000.0)
    quantity = np.rint(value / price * 1e6).astype(np.int64)
    cash = int(rng.integers(0, 50_000))
    book = one_account(quantity, price, target, cash, flow)
    theirs_policy, theirs = live(book, band, policy, due, rules)
    ours_policy, ours = lab_review(book, band, policy, due, rules)
    assert ours_policy == theirs_policy
    for mine, other in zip(ours, theirs, strict=True):
        assert mine[0].tolist() == other[0].tolist()
