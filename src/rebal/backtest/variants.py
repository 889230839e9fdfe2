"""Policy variants of the lab and how they map onto the core's policies and a review schedule.

The lab's policy names are the ones advisors use; each is a core policy plus a schedule:

=========== ====================== ==================================================
lab policy  core policy            reviewed on
=========== ====================== ==================================================
never       (none)                 never: buy and hold; flows pro rata to holdings
calendar    ``Full``               calendar dates (monthly ... annual, a given day)
threshold   ``Bands``              every check (daily = each observation, or weekly ...)
hybrid      ``Bands``              calendar review dates, trading only on a band breach
rails       ``Rails``              every ``look`` observations (or a check frequency)
tiered      ``Tiered``             as rails; a breach of the wide band goes to target
cash-flow   ``CashFlow``           never reviewed: only deposits and withdrawals trade
=========== ====================== ==================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rebal.backtest.engine import Costs, LabPlan, long_term_from
from rebal.backtest.history import PriceHistory
from rebal.backtest.schedule import ScheduleSpec
from rebal.core.bands import BandParams, BandSpec, band_edges, resolve_band_params, run_band_params
from rebal.core.policies import Policy, policy_by_name
from rebal.core.types import FloatArray
from rebal.tax.lots import LotMethod

#: Lab policy name -> core policy name (None: the variant never trades by itself).
CORE_POLICY: dict[str, str | None] = {
    "never": None,
    "calendar": "full",
    "threshold": "bands",
    "hybrid": "bands",
    "rails": "rails",
    "tiered": "tiered",
    "cash-flow": "cash-flow",
}
#: Lab policies that trade to the inner rails.
RAIL_POLICIES = ("rails", "tiered")
#: Review frequency a lab policy uses when none is given.
DEFAULT_FREQUENCY = {"calendar": "quarterly", "hybrid": "quarterly"}


@dataclass(frozen=True, slots=True)
class Variant:
    """One policy variant: a lab policy, its bands and when it is reviewed."""

    policy: str
    bands: BandSpec = field(default_factory=BandSpec)
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)

    def __post_init__(self) -> None:
        if self.policy not in CORE_POLICY:
            raise ValueError(
                f"unknown policy {self.policy!r}; choose one of {', '.join(CORE_POLICY)}"
            )

    @property
    def reviews(self) -> ScheduleSpec:
        """The effective schedule: none for never and cash-flow."""
        if self.policy in ("never", "cash-flow"):
            return ScheduleSpec(never=True)
        return self.schedule

    def applied_widths(self) -> dict[str, float | None]:
        """The band, rail and wide-band widths (fractions; None: not applied) the policy trades
        on: rails given or derived (:func:`rebal.core.bands.run_band_params`) for ``rails``
        and ``tiered``, the wide band for ``tiered`` only."""
        run = run_band_params(self.bands)
        uses = {"band": True, "rail": self.policy in RAIL_POLICIES, "wide": self.policy == "tiered"}
        widths: dict[str, float | None] = {}
        for name in BandParams.__slots__:
            value = float(getattr(run, name))
            widths[name] = value if uses[name[:4]] and not np.isnan(value) else None
        return widths

    def label(self) -> str:
        """A short human label such as ``threshold rel 20% daily`` or, with rails given,
        ``rails rel 20% rail abs 8% daily``."""
        parts = [self.policy]
        if self.policy in ("threshold", "hybrid", "rails", "tiered"):
            b = self.bands
            given = [("", "band")]
            given += [("rail ", "rail")] if self.policy in RAIL_POLICIES else []
            given += [("wide ", "wide")] if self.policy == "tiered" else []
            for prefix, name in given:
                for kind in ("abs", "rel"):
                    value = getattr(b, f"{name}_{kind}")
                    if value is not None:
                        parts.append(f"{prefix}{kind} {value * 100:g}%")
        if self.policy not in ("never", "cash-flow"):
            parts.append(self.reviews.describe())
        return " ".join(parts)


def build_plan(
    history: PriceHistory,
    variants: list[Variant],
    target: FloatArray,
    *,
    initial: float,
    flows: FloatArray,
    costs: Costs,
    lots: LotMethod = LotMethod.AVERAGE,
    lot_rates: tuple[float, float] | None = None,
) -> LabPlan:
    """Turn variants with (V, K) ``target`` weights into the arrays the engine runs; sales
    relieve ``lots`` by that method (``min-tax`` by tax per unit at the (short-term,
    long-term) ``lot_rates`` when given), long or short term by the dates of the history."""
    if initial <= 0:
        raise ValueError(f"the initial value must be positive, received {initial}")
    shape = (1, target.shape[1])
    params_by_spec: dict[BandSpec, BandParams] = {}
    rows: list[BandParams] = []
    for v in variants:
        if v.bands not in params_by_spec:
            params_by_spec[v.bands] = resolve_band_params(v.bands, shape)
        rows.append(params_by_spec[v.bands])
    params = BandParams(
        *(np.concatenate([getattr(r, f) for r in rows]) for f in BandParams.__slots__)
    )
    policies: list[Policy | None] = []
    policy_idx = []
    for v in variants:
        name = CORE_POLICY[v.policy]
        policy = None if name is None else policy_by_name(name)
        if policy not in policies:
            policies.append(policy)
        policy_idx.append(policies.index(policy))
    schedules: list[ScheduleSpec] = []
    review_idx = []
    for v in variants:
        if v.reviews not in schedules:
            schedules.append(v.reviews)
        review_idx.append(schedules.index(v.reviews))
    reviews = np.stack([s.mask(history.dates) for s in schedules])
    return LabPlan(
        prices=history.prices,
        target=target,
        bands=params,
        edges=band_edges(target, params),
        policies=tuple(policies),
        policy_idx=np.array(policy_idx, dtype=np.int64),
        reviews=reviews,
        review_idx=np.array(review_idx, dtype=np.int64),
        cooldown=np.array([v.reviews.cooldown for v in variants], dtype=np.int64),
        initial=float(initial),
        flows=flows,
        costs=costs,
        year=history.dates.astype("datetime64[Y]").astype(np.int64) + 1970,
        lots=lots,
        long_from=long_term_from(history.dates),
        lot_rates=lot_rates,
    )
