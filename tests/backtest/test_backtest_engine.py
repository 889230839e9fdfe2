"""The vectorised engine gives, row for row, what a plain day-by-day loop over the core gives.

The reference below visits every observation of one variant and asks the core's book-wide
objects (``measure_drift``, the policies) directly; the engine runs all variants in its compiled
loop over the core's per-account kernels. They must agree on every value, event, cost and drift
figure, with cash flows and costs switched on.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebal.backtest.data import PriceHistory
from rebal.backtest.engine import Costs, simulate
from rebal.backtest.schedule import ScheduleSpec
from rebal.backtest.variants import CORE_POLICY, Variant, build_plan
from rebal.core.bands import BandSpec, band_edges, resolve_band_params
from rebal.core.drift import measure_drift
from rebal.core.policies import PolicyInput, policy_by_name

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
    history: PriceHistory, variant: Variant, flows: np.ndarray, costs: Costs, initial: float
) -> dict[str, float | np.ndarray]:
    """One variant, one observation at a time, straight through the core."""
    prices = history.prices
    n, k = prices.shape
    target = WEIGHTS[None, :]
    edges = band_edges(target, resolve_band_params(variant.bands, (1, k)))
    name = CORE_POLICY[variant.policy]
    policy = None if name is None else policy_by_name(name)
    reviews = variant.reviews.mask(history.dates)
    units = initial * WEIGHTS / prices[0]
    value = np.zeros(n)
    value[0] = initial
    events, turnover, paid, drift_sum, realised = 0, 0.0, 0.0, 0.0, 0.0
    basis = initial * WEIGHTS
    year = history.dates.astype("datetime64[Y]").astype(int) + 1970
    by_year = dict.fromkeys(year.tolist(), 0.0)
    next_review = 0
    for t in range(1, n):
        held = units * prices[t]
        drift = measure_drift(held[None], np.zeros(1), target, edges, np.ones((1, k), bool))
        total = float(drift.total[0])
        drift_sum += float(np.abs(drift.drift).max())
        value[t] = total
        flow = max(float(flows[t]), -total)
        reviewing = policy is not None and name != "cash-flow"
        review = reviewing and reviews[t] and t >= next_review
        if (review and bool(policy.wants_trade(drift)[0])) or (
            name == "cash-flow" and flow != 0
        ):
            assert policy is not None
            inp = PolicyInput(drift, np.zeros((1, k), bool), np.array([flow]))
            desired = policy.desired_values(inp)[0]
            events += 1
            next_review = t + 1 + variant.reviews.cooldown
        elif flow != 0:
            desired = held * (total + flow) / total
        else:
            continue
        trade = np.abs(desired - held)
        count = int((trade > 1e-9 * max(total, abs(flow))).sum())
        post = desired.sum()
        cost = min(costs.bps * 1e-4 * trade.sum() + costs.fixed * count, post)
        final = desired * (post - cost) / post if post > 0 else np.zeros(k)
        for j in range(k):
            if final[j] < held[j]:
                share = (held[j] - final[j]) / held[j]
                realised += held[j] - final[j] - basis[j] * share
                by_year[int(year[t])] += held[j] - final[j] - basis[j] * share
                basis[j] *= 1 - share
            else:
                basis[j] += final[j] - held[j]
        units = final / prices[t]
        value[t] = final.sum()
        paid += cost
        turnover += max(trade.sum() - abs(flow), 0.0) / 2 / total
    return {"value": value, "events": events, "turnover": turnover, "costs": paid,
            "drift_sum": drift_sum, "realised": realised,
            "realised_by_year": np.array(list(by_year.values()))}


@pytest.mark.parametrize(
    ("flow", "costs"),
    [(0.0, Costs()), (2_000.0, Costs(bps=10, fixed=1.0)), (-900.0, Costs(bps=25))],
    ids=["plain", "contributions+costs", "withdrawals+costs"],
)
def test_engine_matches_day_by_day_reference(
    history: PriceHistory, flow: float, costs: Costs
) -> None:
    flows = np.zeros(len(history.dates))
    flows[ScheduleSpec("monthly").mask(history.dates)] = flow
    target = np.repeat(WEIGHTS[None, :], len(VARIANTS), axis=0)
    plan = build_plan(history, VARIANTS, target, initial=100_000.0, flows=flows, costs=costs)
    result = simulate(plan)
    for row, variant in enumerate(VARIANTS):
        ref = reference(history, variant, flows, costs, 100_000.0)
        np.testing.assert_allclose(
            result.value[row], ref["value"], rtol=1e-11, err_msg=variant.label()
        )
        assert result.events[row] == ref["events"], variant.label()
        assert result.costs[row] == pytest.approx(ref["costs"], rel=1e-9, abs=1e-9)
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
        np.testing.assert_array_equal(policy_by_name(name).wants_trade(drift), drift.any_breach)


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
        ref = reference(history, variant, flows, Costs(), 1000.0)
        np.testing.assert_allclose(result.value[row], ref["value"], rtol=1e-12)
        assert result.events[row] == ref["events"], variant.label()


def test_a_cooldown_spaces_trades_apart(history: PriceHistory) -> None:
    flows = np.zeros(len(history.dates))
    variants = [
        Variant("rails", BandSpec(band_rel=0.04), ScheduleSpec("daily", cooldown=cooldown))
        for cooldown in (0, 30)
    ]
    target = np.repeat(WEIGHTS[None, :], 2, axis=0)
    plan = build_plan(history, variants, target, initial=1.0, flows=flows, costs=Costs())
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
    plan = build_plan(history, variants, target, initial=1.0, flows=flows, costs=Costs())
    result = simulate(plan)
    assert np.diff(result.event_dates(0)).min() == 1
    assert np.diff(result.event_dates(1)).min() == 2
    assert np.diff(result.event_dates(2)).min() == 3


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
    costs = Costs(bps=5, fixed=0.5)
    plan = build_plan(
        history, [variant], WEIGHTS[None, :].copy(), initial=10_000.0, flows=flows, costs=costs
    )
    result = simulate(plan)
    ref = reference(history, variant, flows, costs, 10_000.0)
    # Absolute slack of 1e-12 of the initial value: a withdrawal that nearly empties the
    # portfolio leaves cents computed as a difference of thousands, exact only to that order.
    np.testing.assert_allclose(result.value[0], ref["value"], rtol=1e-11, atol=1e-8)
    assert result.events[0] == ref["events"]
    assert result.realised[0] == pytest.approx(ref["realised"], rel=1e-9, abs=1e-6)


def test_selling_everything_realises_the_whole_gain(history: PriceHistory) -> None:
    flows = np.zeros(len(history.dates))
    flows[200] = -1e12
    plan = build_plan(
        history, [Variant("never")], WEIGHTS[None, :].copy(), initial=1_000.0, flows=flows,
        costs=Costs(),
    )
    result = simulate(plan)
    proceeds = -result.flow_done[0, 0]
    assert result.realised[0] == pytest.approx(proceeds - 1_000.0, rel=1e-12)
