"""The vectorised lab gives, row for row, what a plain day-by-day loop over ``propose`` gives.

The reference below visits every observation of one variant and runs the live engine
(:func:`rebal.core.engine.propose`) on the variant as a one-account book at each of its reviews
and flows; the lab runs all variants in its compiled loop over the engine's step. They must
agree on every value, event, turnover and drift figure and on the gains realised, with cash
flows switched on. (Trading costs are the lab's own: see ``test_backtest_costs``.)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from labbook import one_account

from rebal.backtest.engine import Costs, simulate
from rebal.backtest.history import PriceHistory
from rebal.backtest.schedule import ScheduleSpec
from rebal.backtest.variants import CORE_POLICY, Variant, build_plan
from rebal.core import kernels
from rebal.core.bands import BandSpec, band_edges, resolve_band_params
from rebal.core.drift import measure_drift
from rebal.core.engine import NO_POLICY, POLICY_NAMES, RunConfig, propose
from rebal.core.policies import policy_by_name
from rebal.core.trades import MICRO, TradeRules, generate_trades

WEIGHTS = np.array([0.5, 0.3, 0.2])
VARIANTS = [
    Variant("never"),
    Variant("calendar", schedule=ScheduleSpec("monthly")),
    Variant("calendar", schedule=ScheduleSpec("quarterly", day=-1)),
    Variant("threshold", BandSpec(band_rel=0.10), ScheduleSpec("daily")),
    Variant("threshold", BandSpec(band_abs=0.03, band_rel=None), ScheduleSpec("weekly")),
    Variant("hybrid", BandSpec(band_abs=0.02, band_rel=None), ScheduleSpec("quarterly")),
    Variant("rails", BandSpec(band_rel=0.10), ScheduleSpec(look=5)),
    Variant("tiered", BandSpec(band_rel=0.06), ScheduleSpec("daily")),
    Variant("rails", BandSpec(band_rel=0.04), ScheduleSpec("daily", cooldown=30)),
    Variant("cash-flow"),
]


def reference(
    history: PriceHistory, variant: Variant, flows: np.ndarray, initial: float
) -> dict[str, float | np.ndarray]:
    """One variant, one observation at a time, through ``propose``: the initial cash invested
    by the full policy; then at a due review the variant's policy (every account for a
    calendar review), between reviews the cash-flow policy alone; buy-and-hold takes a flow
    pro rata to its holdings, by the live order rules."""
    prices = history.prices
    n, k = prices.shape
    target = WEIGHTS[None, :]
    edges = band_edges(target, resolve_band_params(variant.bands, (1, k)))
    name = CORE_POLICY[variant.policy]
    reviews = variant.reviews.mask(history.dates)
    quantity = np.zeros(k, dtype=np.int64)
    basis = np.zeros(k)
    value = np.zeros(n)
    events, turnover, drift_sum, realised = 0, 0.0, 0.0, 0.0
    year = history.dates.astype("datetime64[Y]").astype(int) + 1970
    by_year = dict.fromkeys(year.tolist(), 0.0)
    next_review = 0
    cash = round(initial * 100)
    for t in range(n):
        held = quantity / MICRO * prices[t]
        total = held.sum() + cash / 100
        if t > 0:
            drift = measure_drift(
                held[None], np.array([cash / 100]), target, edges, np.ones((1, k), bool)
            )
            drift_sum += float(np.abs(drift.drift).max())
        value[t] = total
        flow, everything = 0, 0
        if t > 0 and flows[t] != 0:  # what selling everything raises, or more, liquidates
            everything = cash + sum(round(held[j] * 100) for j in range(k))
            flow = max(round(flows[t] * 100), -everything)
        due = t == 0 or (name is not None and bool(reviews[t]) and t >= next_review)
        if not due and flow == 0:
            continue
        book = one_account(
            quantity, prices[t], WEIGHTS, cash, flow, flow < 0 and flow == -everything
        )
        if name is None and t > 0:  # buy and hold
            budget = max(held.sum() + (cash + flow) / 100, 0.0)
            desired = held / held.sum() * budget if held.sum() > 0 else budget * WEIGHTS
            trades = generate_trades(
                book.quantity_micro,
                book.price,
                desired[None],
                book.cash_cents,
                book.pending_cents,
                np.zeros(1, dtype=np.int64),
                np.ones((1, k), bool),
                TradeRules(),
            )
            chosen = NO_POLICY
        else:
            policy = "full" if t == 0 else (name if due else "cash-flow")
            assert policy is not None
            config = RunConfig(
                policy=policy, all_accounts=due and policy == "full", bands=variant.bands
            )
            result = propose(book, config)
            chosen, trades = int(result.policy[0]), result.trades
            if chosen == NO_POLICY:
                cash += flow
                continue
        sold, bought = trades.sell_micro[0], trades.buy_micro[0]
        for j in range(k):
            if sold[j] > 0:
                gain = trades.sell_cents[0, j] / 100 - basis[j] * sold[j] / quantity[j]
                basis[j] -= basis[j] * sold[j] / quantity[j]
                realised += gain if t > 0 else 0.0
                by_year[int(year[t])] += gain
            if bought[j] > 0 and trades.buy_cents[0, j] > 0:
                basis[j] += trades.buy_cents[0, j] / 100
        quantity = quantity - sold + bought
        cash = int(trades.cash_after_cents[0])
        moved = (trades.sell_cents[0].sum() + trades.buy_cents[0].sum()) / 100
        if t > 0 and name is not None and POLICY_NAMES[chosen] == name and moved > 0:
            events += 1
            next_review = t + 1 + variant.reviews.cooldown
        value[t] = (quantity / MICRO * prices[t]).sum() + cash / 100
        if t > 0 and total > 0:
            turnover += max(moved - abs(flow / 100), 0.0) / 2 / total
    return {
        "value": value,
        "events": events,
        "turnover": turnover,
        "drift_sum": drift_sum,
        "realised": realised,
        "realised_by_year": np.array(list(by_year.values())),
    }


@pytest.mark.parametrize("flow", [0.0, 2_000.0, -900.0], ids=["plain", "deposits", "withdrawals"])
def test_engine_matches_day_by_day_reference(history: PriceHistory, flow: float) -> None:
    flows = np.zeros(len(history.dates))
    flows[ScheduleSpec("monthly").mask(history.dates)] = flow
    target = np.repeat(WEIGHTS[None, :], len(VARIANTS), axis=0)
    plan = build_plan(history, VARIANTS, target, initial=100_000.0, flows=flows, costs=Costs())
    result = simulate(plan)
    for row, variant in enumerate(VARIANTS):
        ref = reference(history, variant, flows, 100_000.0)
        np.testing.assert_allclose(
            result.value[row], ref["value"], rtol=1e-11, err_msg=variant.label()
        )
        assert result.events[row] == ref["events"], variant.label()
        assert result.turnover[row] == pytest.approx(ref["turnover"], rel=1e-9, abs=1e-12)
        assert result.drift_sum[row] == pytest.approx(ref["drift_sum"], rel=1e-9)
        assert result.realised[row] == pytest.approx(ref["realised"], rel=1e-9, abs=1e-6)
        np.testing.assert_allclose(
            result.realised_by_year[row], ref["realised_by_year"], rtol=1e-9, atol=1e-6
        )
    # Every reviewing policy traded at least once, so the comparison means something.
    assert (result.events[1:-1] > 0).all()


def test_withdrawals_larger_than_the_portfolio_empty_it(history: PriceHistory) -> None:
    flows = np.zeros(len(history.dates))
    flows[100] = -1e12
    target = WEIGHTS[None, :].copy()
    plan = build_plan(history, [VARIANTS[3]], target, initial=1_000.0, flows=flows, costs=Costs())
    result = simulate(plan)
    assert result.value[0, 100:].max() == 0.0
    # Only what was there could be withdrawn: about the value of the day before.
    assert result.flow_done[0, 0] == pytest.approx(-result.value[0, 99], rel=0.1)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=0, max_value=2**31),
    st.sampled_from(
        [
            BandSpec(band_rel=0.2),
            BandSpec(band_abs=0.05, band_rel=None),
            BandSpec(band_abs=0.03, band_rel=0.1),
        ]
    ),
)
def test_band_triggered_policies_trade_exactly_on_a_breach(seed: int, spec: BandSpec) -> None:
    """Threshold, rails and tiered rebalancing trade exactly when a band is breached."""
    rng = np.random.default_rng(seed)
    n, k = 50, 4
    target = rng.dirichlet(np.ones(k), size=n)
    held = target * rng.lognormal(0.0, 0.3, size=(n, k)) * 1000
    edges = band_edges(target, resolve_band_params(spec, (n, k)))
    drift = measure_drift(held, np.zeros(n), target, edges, np.ones((n, k), bool))
    for name in ("bands", "rails", "tiered"):
        code = policy_by_name(name).code
        trades = [kernels.wants(code, bool(breach), True) for breach in drift.any_breach]
        np.testing.assert_array_equal(trades, drift.any_breach)


def test_weights_exactly_on_a_band_edge_are_not_a_breach() -> None:
    """A weight exactly on its band edge is inside the band, in the lab as in the core."""
    a = np.array([1.0, 1.2, 1.5, 1.6, 2.0, 2.4, 2.6, 2.5, 2.55])
    prices = np.column_stack([a, np.ones_like(a), np.ones_like(a)])
    dates = np.busday_offset("2020-01-01", np.arange(len(a)), roll="forward")
    history = PriceHistory(dates.astype("datetime64[D]"), ("A", "B", "C"), prices, "edges")
    variants = [
        Variant(policy, BandSpec(band_rel=0.2), ScheduleSpec("daily"))
        for policy in ("threshold", "rails", "tiered")
    ]
    flows = np.zeros(len(a))
    target = np.repeat(WEIGHTS[None, :], len(variants), axis=0)
    plan = build_plan(history, variants, target, initial=1000.0, flows=flows, costs=Costs())
    result = simulate(plan)
    # Observation 2 puts A exactly on its upper edge (60 %) and B on its lower one (24 %).
    assert result.event_dates(0).tolist() == [3, 6]
    for row, variant in enumerate(variants):
        ref = reference(history, variant, flows, 1000.0)
        np.testing.assert_allclose(result.value[row], ref["value"], rtol=1e-12)
        assert result.events[row] == ref["events"], variant.label()


def test_a_cooldown_spaces_trades_apart(history: PriceHistory) -> None:
    flows = np.zeros(len(history.dates))
    variants = [
        Variant("rails", BandSpec(band_rel=0.04), ScheduleSpec("daily", cooldown=cooldown))
        for cooldown in (0, 30)
    ]
    target = np.repeat(WEIGHTS[None, :], 2, axis=0)
    plan = build_plan(history, variants, target, initial=10_000.0, flows=flows, costs=Costs())
    result = simulate(plan)
    assert np.diff(result.event_dates(1)).min() >= 31
    assert np.diff(result.event_dates(0)).min() < 30
    assert result.events[1] < result.events[0]


def test_a_cooldown_of_n_pauses_the_next_n_observations(history: PriceHistory) -> None:
    """`--cooldown 1` skips the observation after a trade: no two trades on neighbouring
    observations, which a tight band with no cooldown makes (it trades every day)."""
    flows = np.zeros(len(history.dates))
    variants = [
        Variant("threshold", BandSpec(band_abs=0.001), ScheduleSpec("daily", cooldown=cooldown))
        for cooldown in (0, 1, 2)
    ]
    target = np.repeat(WEIGHTS[None, :], 3, axis=0)
    plan = build_plan(history, variants, target, initial=10_000.0, flows=flows, costs=Costs())
    result = simulate(plan)
    assert np.diff(result.event_dates(0)).min() == 1
    assert np.diff(result.event_dates(1)).min() == 2
    assert np.diff(result.event_dates(2)).min() == 3


@pytest.mark.parametrize("cooldown", [0, 1, 5])
def test_a_cooldown_of_n_pauses_exactly_n_reviews_after_each_trade(
    history: PriceHistory, cooldown: int
) -> None:
    # A band far narrower than a day's moves: every review that may trade does, so the trades
    # fall at 1, then every cooldown + 1 observations (--cooldown 1 skips one review).
    schedule = ScheduleSpec("daily", cooldown=cooldown)
    variant = Variant("threshold", BandSpec(band_rel=1e-6), schedule)
    flows = np.zeros(len(history.dates))
    plan = build_plan(
        history, [variant], WEIGHTS[None, :].copy(), initial=10_000.0, flows=flows, costs=Costs()
    )
    dates = simulate(plan).event_dates(0)
    assert dates.tolist() == list(range(1, len(history.dates), cooldown + 1))


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**31),
    policy=st.sampled_from(sorted(CORE_POLICY)),
    band=st.floats(min_value=0.01, max_value=0.3),
    relative=st.booleans(),
    frequency=st.sampled_from(["daily", "weekly", "monthly"]),
    cooldown=st.integers(min_value=0, max_value=10),
    flow=st.sampled_from([0.0, 300.0, -200.0, -5000.0]),  # the last empties the portfolio
)
def test_engine_matches_reference_on_random_histories(
    make_history: Callable[..., PriceHistory],
    seed: int,
    policy: str,
    band: float,
    relative: bool,
    frequency: str,
    cooldown: int,
    flow: float,
) -> None:
    history = make_history(days=90, seed=seed)
    spec = BandSpec(band_rel=band) if relative else BandSpec(band_abs=band / 3, band_rel=None)
    variant = Variant(policy, spec, ScheduleSpec(frequency, cooldown=cooldown))
    flows = np.zeros(len(history.dates))
    flows[ScheduleSpec("weekly").mask(history.dates)] = flow
    plan = build_plan(
        history, [variant], WEIGHTS[None, :].copy(), initial=10_000.0, flows=flows, costs=Costs()
    )
    result = simulate(plan)
    ref = reference(history, variant, flows, 10_000.0)
    # Absolute slack of 1e-12 of the initial value: a withdrawal that nearly empties the
    # portfolio leaves cents computed as a difference of thousands, exact only to that order.
    np.testing.assert_allclose(result.value[0], ref["value"], rtol=1e-11, atol=1e-8)
    assert result.events[0] == ref["events"]
    assert result.realised[0] == pytest.approx(ref["realised"], rel=1e-9, abs=1e-6)


def test_selling_everything_realises_the_whole_gain(history: PriceHistory) -> None:
    flows = np.zeros(len(history.dates))
    flows[200] = -1e12
    plan = build_plan(
        history,
        [Variant("never")],
        WEIGHTS[None, :].copy(),
        initial=1_000.0,
        flows=flows,
        costs=Costs(),
    )
    result = simulate(plan)
    proceeds = -result.flow_done[0, 0]
    assert result.realised[0] == pytest.approx(proceeds - 1_000.0, rel=1e-12)
