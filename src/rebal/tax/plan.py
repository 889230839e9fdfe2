"""A tax-aware rebalancing problem for one taxable account, a plan for it, and its exact cost.

The problem: positions (price, target weight, band half-width, tax lots) and cash; after the
trades every position's weight must lie within its band around the target and cash must not be
negative; trades pay a proportional cost. A `TaxPlan` says how many shares of which lot to sell and
how much money to put into which security. `evaluate` prices a plan exactly (Decimal): realised
short- and long-term gains lot by lot, estimated tax with IRS netting, trading cost, weights
after and how far they are outside their bands. The naive FIFO full rebalance, the rule-based
method (`rebal.tax.rulebased`) and the optimiser (`rebal.tax.optimizer`) all produce Plans, so
they are compared on the same arithmetic.

Weights are fractions of the account value before trading (positions plus cash); the part of
the value not allocated to positions is the cash target.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from rebal.tax.lots import LotMethod, TaxLot, Term, relieve_lots
from rebal.tax.money import ZERO, to_cents
from rebal.tax.rates import TaxRates, estimated_tax

#: Shares are rounded to this step when a plan is made from continuous amounts.
SHARE_STEP = Decimal("0.000001")
#: Money by which a position may end outside its band: rounding to cents and share steps.
BAND_TOLERANCE = Decimal("0.05")
#: Cash a planner keeps back to absorb the rounding of shares, cents and trading cost (the
#: rule-based method and the optimiser both end with at least this much cash when they can).
CASH_CUSHION = Decimal(1)


@dataclass(frozen=True)
class Position:
    """One security of the account: price, target weight, band half-width (weights), lots."""

    symbol: str
    price: Decimal
    target: Decimal
    band: Decimal
    lots: tuple[TaxLot, ...]

    @property
    def quantity(self) -> Decimal:
        """Shares held."""
        return sum((lot.quantity for lot in self.lots), ZERO)

    @property
    def value(self) -> Decimal:
        """Market value held."""
        return self.quantity * self.price


@dataclass(frozen=True)
class AccountProblem:
    """Everything a tax-aware rebalance of one taxable account needs.

    `gain_budget` caps the net realised gain (short plus long term) of the run;
    `short_term_gains=False` forbids selling a short-term lot at a gain. `blocked_buys` and
    `blocked_loss_sales` are the symbols the household may not buy, or sell at a loss, today
    without a wash sale (`rebal.tax.wash_sales.WashGuard.blocked`). `unsold` are the symbols
    that sell nothing: the order rules would drop their sale (below the minimum trade, or no
    whole share), so a plan must not count on it (a loss it would offset a gain with).
    """

    account: str
    positions: tuple[Position, ...]
    cash: Decimal
    rates: TaxRates
    as_of: date
    cost_rate: Decimal = Decimal("0.0005")
    gain_budget: Decimal | None = None
    short_term_gains: bool = True
    blocked_buys: frozenset[str] = frozenset()
    blocked_loss_sales: frozenset[str] = frozenset()
    unsold: frozenset[str] = frozenset()

    @property
    def total(self) -> Decimal:
        """Account value before trading."""
        return self.cash + sum((p.value for p in self.positions), ZERO)

    def lot_owner(self) -> dict[str, Position]:
        """The position of every lot id (lot ids are unique within the account)."""
        owner = {lot.lot_id: p for p in self.positions for lot in p.lots}
        if len(owner) != sum(len(p.lots) for p in self.positions):
            raise ValueError(f"account {self.account}: lot ids are not unique")
        return owner


@dataclass(frozen=True)
class TaxPlan:
    """Shares to sell per lot id and money to invest per symbol."""

    method: str
    sells: Mapping[str, Decimal] = field(default_factory=dict)
    buys: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanResult:
    """The exact outcome of a plan; `band_excess` is the largest amount of money by which a
    position ends outside its band (zero or negative: all inside); `outside_band` lists the
    positions left outside (what a gain budget left undone), in money beyond the band edge."""

    realised_st: Decimal
    realised_lt: Decimal
    estimated_tax: Decimal
    traded: Decimal
    cost: Decimal
    cash_after: Decimal
    weights_after: dict[str, Decimal]
    band_excess: Decimal
    outside_band: dict[str, Decimal]

    @property
    def feasible(self) -> bool:
        """Every position within its band (to `BAND_TOLERANCE`) and cash not negative."""
        return self.band_excess <= BAND_TOLERANCE and self.cash_after >= 0


def evaluate(problem: AccountProblem, plan: TaxPlan) -> PlanResult:
    """Price `plan` exactly: gains lot by lot, netted tax, cost, weights and band excess."""
    owner = problem.lot_owner()
    st = lt = proceeds = ZERO
    sold_value: dict[str, Decimal] = {}
    for lot_id, shares in plan.sells.items():
        if shares <= 0:
            continue
        position = owner[lot_id]
        lot = next(lot for lot in position.lots if lot.lot_id == lot_id)
        (sale,) = relieve_lots([lot], shares, LotMethod.FIFO, position.price, problem.as_of).sales
        if sale.term is Term.SHORT:
            st += sale.gain
        else:
            lt += sale.gain
        proceeds += sale.proceeds
        sold_value[position.symbol] = sold_value.get(position.symbol, ZERO) + sale.proceeds
    bought = sum(plan.buys.values(), ZERO)
    traded = proceeds + bought
    cost = to_cents(traded * problem.cost_rate)
    cash_after = problem.cash + proceeds - bought - cost
    total = problem.total
    weights: dict[str, Decimal] = {}
    outside: dict[str, Decimal] = {}
    excess = ZERO
    for p in problem.positions:
        value = p.value - sold_value.get(p.symbol, ZERO) + plan.buys.get(p.symbol, ZERO)
        weights[p.symbol] = value / total
        beyond = abs(value - p.target * total) - p.band * total
        excess = max(excess, beyond)
        if beyond > BAND_TOLERANCE:
            outside[p.symbol] = to_cents(beyond)
    return PlanResult(
        realised_st=st,
        realised_lt=lt,
        estimated_tax=estimated_tax(st, lt, problem.rates),
        traded=traded,
        cost=cost,
        cash_after=cash_after,
        weights_after=weights,
        band_excess=excess,
        outside_band=outside,
    )


def idle_cash(problem: AccountProblem, plan: TaxPlan) -> Decimal:
    """Cash `plan` leaves above the account's cash target (none when below it): money neither
    invested nor kept."""
    target = (1 - sum((p.target for p in problem.positions), ZERO)) * problem.total
    return max(evaluate(problem, plan).cash_after - target, ZERO)


def naive_fifo_plan(problem: AccountProblem) -> TaxPlan:
    """Trade every position exactly to target, selling the oldest lots first."""
    total = problem.total
    sells: dict[str, Decimal] = {}
    buys: dict[str, Decimal] = {}
    for p in problem.positions:
        gap = p.target * total - p.value
        if gap > 0:
            buys[p.symbol] = to_cents(gap)
        elif gap < 0:
            shares = min(p.quantity, (-gap / p.price).quantize(SHARE_STEP))
            if shares > 0:
                relief = relieve_lots(p.lots, shares, LotMethod.FIFO, p.price, problem.as_of)
                sells.update({s.lot_id: s.quantity for s in relief.sales})
    return TaxPlan("naive-fifo", sells, buys)
