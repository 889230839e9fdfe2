"""The fast rule-based tax-aware rebalance of one taxable account (Decimal, no solver).

It trades only what the bands require and pays for it with the cheapest shares:

1. A position above its band is sold down to the band's upper edge, lots by ``min-tax`` with
   the rates (least tax per share first).
2. A position below its band is bought up to the band's lower edge.
3. If cash falls short, more shares are sold, cheapest tax per dollar of proceeds first (losses
   first, then gains by rate × gain per dollar), from positions that are not bought, never below
   their lower edge.
4. While the run realises a net gain, losing lots of positions that are not bought are sold
   (largest loss per dollar first, within band room) to offset it, when the tax saved beats the
   cost of trading out and back in.
5. Cash beyond the cash target is invested in positions that were not sold, up to their target,
   in proportion to how far below it they are.

A position that is bought is never sold at a loss in the same run (that would be a wash sale),
nor is a security in `blocked_buys` bought or a losing lot of one in `blocked_loss_sales` sold
(the household's recent trades would make it a wash sale).
With a gain budget (`AccountProblem.gain_budget`) no sale takes the run's net realised gain past
it, and with short-term gains forbidden no short-term lot is sold at a gain; when that leaves
cash short, the buys shrink pro rata, and what stays outside the bands is reported by
`rebal.tax.plan.evaluate` (`PlanResult.outside_band`).
The optimiser (`rebal.tax.optimizer`) solves the same problem exactly; `benchmarks/tax.py`
compares the two.
"""

from collections import defaultdict
from dataclasses import replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from rebal.tax.lots import LotMethod, TaxLot, Term, holding_term, relieve_lots
from rebal.tax.money import ZERO, to_cents
from rebal.tax.plan import CASH_CUSHION, SHARE_STEP, AccountProblem, Position, TaxPlan


class _Run:
    """Mutable state of one rule-based rebalance."""

    def __init__(self, problem: AccountProblem, washed: frozenset[str] = frozenset()) -> None:
        self.problem = problem
        #: Symbols whose losses a wash sale would disallow: they save no tax today.
        self.washed = washed
        self.total = problem.total
        self.held: dict[str, dict[str, TaxLot]] = {
            p.symbol: {lot.lot_id: lot for lot in p.lots} for p in problem.positions
        }
        self.value: dict[str, Decimal] = {p.symbol: p.value for p in problem.positions}
        self.sells: dict[str, Decimal] = defaultdict(Decimal)
        self.buys: dict[str, Decimal] = defaultdict(Decimal)
        self.proceeds = ZERO
        self.gain = ZERO

    def low(self, p: Position) -> Decimal:
        return (p.target - p.band) * self.total

    def long_term(self, lot: TaxLot) -> bool:
        return holding_term(lot.acquired, self.problem.as_of) is Term.LONG

    def rate(self, lot: TaxLot) -> Decimal:
        rates = self.problem.rates
        return rates.long_term_total if self.long_term(lot) else rates.short_term_total

    def sellable(self, p: Position, lot: TaxLot) -> bool:
        """False for a short-term lot at a gain when short-term gains are forbidden, for a
        losing lot of a security whose loss would be washed, and for an `unsold` security."""
        gain = p.price > lot.cost_per_share
        if p.symbol in self.problem.unsold:
            return False
        if p.price < lot.cost_per_share and p.symbol in self.problem.blocked_loss_sales:
            return False
        return self.problem.short_term_gains or not gain or self.long_term(lot)

    def sell(self, p: Position, lot_id: str, value: Decimal, below_band: bool = False) -> None:
        """Sell up to `value` of a lot: never below the position's lower edge (unless
        `below_band`), never past the gain budget."""
        lot = self.held[p.symbol][lot_id]
        floor = ZERO if below_band else self.low(p)
        take = min(value, self.value[p.symbol] - floor, lot.quantity * p.price)
        gain_per_share = p.price - lot.cost_per_share
        budget = self.problem.gain_budget
        if budget is not None and gain_per_share > 0:
            take = min(take, (budget - self.gain) / gain_per_share * p.price)
        capped = budget is not None and gain_per_share > 0
        rounding = ROUND_FLOOR if capped else ROUND_CEILING
        shares = min(lot.quantity, (take / p.price).quantize(SHARE_STEP, rounding=rounding))
        if shares <= 0:
            return
        (sale,) = relieve_lots([lot], shares, LotMethod.FIFO, p.price, self.problem.as_of).sales
        self.sells[lot_id] += sale.quantity
        self.gain += sale.gain
        if sale.quantity == lot.quantity:
            del self.held[p.symbol][lot_id]
        else:
            self.held[p.symbol][lot_id] = replace(
                lot, quantity=lot.quantity - sale.quantity, cost_basis=lot.cost_basis - sale.basis
            )
        self.value[p.symbol] -= sale.proceeds
        self.proceeds += sale.proceeds

    def cash_after(self) -> Decimal:
        bought = sum(self.buys.values(), ZERO)
        cost = to_cents((self.proceeds + bought) * self.problem.cost_rate)
        return self.problem.cash + self.proceeds - bought - cost - CASH_CUSHION


def rule_based_plan(problem: AccountProblem) -> TaxPlan:
    """The rule-based plan for `problem` (see the module docstring for the rules)."""
    run = _Run(problem)
    total = run.total
    for p in problem.positions:  # 1. down to the upper edge
        excess = run.value[p.symbol] - (p.target + p.band) * total
        for _, lot in _ranked(run, [p], losses_only=False):
            if excess <= 0:
                break
            before = run.value[p.symbol]
            run.sell(p, lot.lot_id, excess)
            excess -= before - run.value[p.symbol]
    for p in problem.positions:  # 2. up to the lower edge
        gap = run.low(p) - run.value[p.symbol]
        if gap > 0 and p.symbol not in problem.blocked_buys:
            run.buys[p.symbol] = to_cents(gap)
    free = [p for p in problem.positions if p.symbol not in run.buys]
    short = -run.cash_after()
    if short > 0:  # 3. cheapest proceeds first
        _raise_cash(run, free, short / (1 - problem.cost_rate))
    if run.gain > 0:  # 4. offset the net gain with losses
        _offset_gains(run, free)
    if run.cash_after() < -CASH_CUSHION:  # the gain budget kept cash short: buy less
        _shrink_buys(run)
    _invest_surplus(run)  # 5.
    sells = {lot_id: q for lot_id, q in run.sells.items() if q > 0}
    buys = {symbol: v for symbol, v in run.buys.items() if v > 0}
    return TaxPlan("rule-based", sells, buys)


def _ranked(
    run: _Run, positions: list[Position], losses_only: bool
) -> list[tuple[Position, TaxLot]]:
    """Sellable lots by tax per dollar of proceeds, cheapest first; losses only: those worth
    harvesting (the tax they save at the long-term rate beats trading out and back in)."""
    ranked: list[tuple[Decimal, str, str, Position, TaxLot]] = []
    for p in positions:
        for lot in run.held[p.symbol].values():
            per_dollar = (p.price - lot.cost_per_share) / p.price
            worth = -per_dollar * run.problem.rates.long_term_total > 2 * run.problem.cost_rate
            if run.sellable(p, lot) and (not losses_only or worth):
                washed = per_dollar < 0 and p.symbol in run.washed
                tax = ZERO if washed else run.rate(lot) * per_dollar
                ranked.append((tax, p.symbol, lot.lot_id, p, lot))
    ranked.sort(key=lambda r: r[:3])
    return [(p, lot) for *_, p, lot in ranked]


def _shrink_buys(run: _Run) -> None:
    """Scale the buys down until cash is not negative (cents rounded down)."""
    bought = sum(run.buys.values(), ZERO)
    spendable = bought + run.cash_after() + CASH_CUSHION
    scale = max(ZERO, spendable / bought / (1 + run.problem.cost_rate)) if bought else ZERO
    for symbol, money in run.buys.items():
        run.buys[symbol] = (money * scale).quantize(Decimal("0.01"), rounding=ROUND_FLOOR)


def _raise_cash(
    run: _Run, positions: list[Position], amount: Decimal, below_band: bool = False
) -> None:
    """Raise `amount` of proceeds, cheapest tax per dollar first (below the lower band edges
    too with `below_band`)."""
    target = run.proceeds + amount
    for p, lot in _ranked(run, positions, losses_only=False):
        if run.proceeds >= target:
            return
        run.sell(p, lot.lot_id, target - run.proceeds, below_band)


def least_tax_sales(problem: AccountProblem, floor: Decimal = ZERO) -> TaxPlan:
    """Sales only, at the least tax, that leave at least `floor` of cash after trading cost
    (with `CASH_CUSHION` to spare): what the account must do to raise cash it owes.

    Lots are sold by tax per dollar of proceeds, cheapest first: losses, then losses a wash
    sale would disallow (`blocked_loss_sales`: no tax today), then the lowest gains; the
    short-term switch holds. The cash comes first, then the gain budget, then the bands: sales
    within the budget from positions above their lower band edges (down to the edge), then
    within the budget from any position, then past the budget in the same two steps. A problem
    whose whole value does not cover `floor` sells every lot it may.
    """
    run = _Run(replace(problem, blocked_loss_sales=frozenset()), washed=problem.blocked_loss_sales)
    for budgeted, below_band in ((True, False), (True, True), (False, False), (False, True)):
        if not budgeted:
            run.problem = replace(run.problem, gain_budget=None)
        short = floor - run.cash_after()
        if short <= 0:
            break
        _raise_cash(run, list(problem.positions), short / (1 - problem.cost_rate), below_band)
    return TaxPlan("least-tax", {lot_id: q for lot_id, q in run.sells.items() if q > 0}, {})


def _offset_gains(run: _Run, positions: list[Position]) -> None:
    """Realise losses until the run's net gain is offset or no losing lot is left."""
    for p, lot in _ranked(run, positions, losses_only=True):
        if run.gain <= 0:
            return
        run.sell(p, lot.lot_id, run.gain / (lot.cost_per_share - p.price) * p.price)


def _invest_surplus(run: _Run) -> None:
    """Spend cash above the cash target on unsold positions below target, pro rata to gap."""
    problem = run.problem
    cash_target = (1 - sum((p.target for p in problem.positions), ZERO)) * run.total
    surplus = (run.cash_after() - cash_target) / (1 + problem.cost_rate)
    sold = {p.symbol for p in problem.positions if any(lot.lot_id in run.sells for lot in p.lots)}
    gaps = {
        p.symbol: p.target * run.total - run.value[p.symbol] - run.buys[p.symbol]
        for p in problem.positions
        if p.symbol not in sold and p.symbol not in problem.blocked_buys
    }
    gaps = {symbol: gap for symbol, gap in gaps.items() if gap > 0}
    if surplus <= 0 or not gaps:
        return
    scale = min(Decimal(1), surplus / sum(gaps.values(), ZERO))
    for symbol, gap in gaps.items():
        run.buys[symbol] += (gap * scale).quantize(Decimal("0.01"), rounding=ROUND_FLOOR)
