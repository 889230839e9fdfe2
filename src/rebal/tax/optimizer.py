"""The optimising tax-aware rebalance of one taxable account: a mixed-integer programme (HiGHS).

Minimise estimated tax + trading cost + a drift penalty + an idle-cash penalty (cash left above
the cash target costs more than investing it), subject to every position ending within
its band, cash not negative, no shorting (a lot sells at most what it holds), no wash sale (a
position that is bought sells no losing lot), the gain budget (net realised gain at most
`AccountProblem.gain_budget`), when forbidden no short-term lot sold at a gain, and nothing the
household's recent trades would turn into a wash sale (`blocked_buys`, `blocked_loss_sales`),
and no sale of a security whose order would be too small to be made (`unsold`).
The bands are soft with a steep penalty (`band_penalty`), so when the budget or a blocked trade
does not allow reaching them the plan does the most drift reduction it can. Variables: shares
sold per lot; per position the money invested, the absolute drift and the amounts above and
below the band; the tax; the idle cash; and one binary per position that has a losing lot (buy
it, or sell its losing lots, not both).

Estimated tax is IRS netting (`rebal.tax.rates.estimated_tax`), which is not convex; the model
uses its convex envelope max(0, LT rate × (ST + LT), ST rate × ST + LT rate × LT). The two agree
except when a net long-term loss offsets a net short-term gain, where the model overstates the
tax (the long-term loss is valued at the long-term rate); plans are always priced exactly
afterwards by `rebal.tax.plan.evaluate`.

The model works in float64; the solution is rounded explicitly at the boundary: shares to
`SHARE_STEP` (never above the lot), money to the cent, and `CASH_CUSHION` absorbs the rounding
of the cost.

The solver is silent: nothing it says reaches standard output, which carries rebal's JSON and
CSV. Its log goes to standard error only when the ``rebal.tax.optimizer`` logger is enabled for
DEBUG.
"""

import logging
from dataclasses import dataclass
from decimal import Decimal

import highspy
import numpy as np
from highspy._core import _Highs

from rebal.tax.lots import Term, holding_term
from rebal.tax.money import ZERO, to_cents
from rebal.tax.plan import CASH_CUSHION, SHARE_STEP, AccountProblem, TaxPlan

_LOG = logging.getLogger(__name__)

#: Cost per dollar a position ends outside its band, beyond the most tax a dollar of sale can
#: save or cost in the account (:func:`band_penalty`).
BAND_PENALTY = 10.0
#: Cost per dollar of idle cash (above the cash target), beyond what investing it costs
#: (:func:`idle_cash_penalty`); far below any tax a sale saves or costs per dollar, so it decides
#: where spare cash goes, never whether a lot is sold for tax.
IDLE_CASH_PENALTY = 0.001


def _quiet_solver() -> _Highs:
    """A HiGHS instance that prints nothing on standard output.

    ``highspy.Highs()`` prints the solver's banner while it sets up its Python callbacks, before
    any option can be set; the plain solver it wraps (``highspy._core._Highs``,
    enough here: no callbacks are used) takes ``output_flag`` before it says anything.
    """
    h = _Highs()
    h.setOptionValue("output_flag", _LOG.isEnabledFor(logging.DEBUG))
    h.setOptionValue("log_to_console", False)
    if _LOG.isEnabledFor(logging.DEBUG):
        h.setOptionValue("log_file", "/dev/stderr")
    return h


def band_penalty(price: list[float], gain: list[float], rate: list[float]) -> float:
    """The cost per dollar outside a band: :data:`BAND_PENALTY` above the largest tax a dollar
    sold from any lot changes (a lot bought at 1,042 and now at 39 saves 10 dollars of tax per
    dollar sold at 40 %), so no tax saving ever buys a position out of its band while the gain
    budget and the short-term switch allow it in."""
    tax_per_dollar = max(
        (r * abs(g) / p for p, g, r in zip(price, gain, rate, strict=True)), default=0.0
    )
    return BAND_PENALTY + tax_per_dollar


def idle_cash_penalty(cost_rate: float, drift_penalty: float) -> float:
    """The cost per dollar of cash left above the cash target: :data:`IDLE_CASH_PENALTY` above
    what investing that dollar costs (trading it in, and at worst the drift of buying past a
    target), so the plan invests the cash the rules would, and never parks positions at their
    lower band edges with the money idle."""
    return IDLE_CASH_PENALTY + cost_rate + drift_penalty


@dataclass(frozen=True)
class Solved:
    """The optimiser's plan and what the solver said."""

    plan: TaxPlan
    objective: float
    status: str


class _Rows:
    """Sparse constraint rows collected before being handed to HiGHS at once."""

    def __init__(self) -> None:
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.starts: list[int] = []
        self.index: list[int] = []
        self.value: list[float] = []

    def add(self, lower: float, upper: float, terms: dict[int, float]) -> None:
        self.starts.append(len(self.index))
        self.lower.append(lower)
        self.upper.append(upper)
        self.index.extend(terms)
        self.value.extend(terms.values())


def optimal_plan(
    problem: AccountProblem, *, drift_penalty: float = 1e-4, time_limit: float = 30.0
) -> Solved:
    """Solve `problem` to optimality (relative MIP gap 1e-6) and round the plan.

    `drift_penalty` is the cost per dollar of remaining distance from target, per position.
    Raises RuntimeError when HiGHS finds no feasible plan.
    """
    positions = problem.positions
    total = float(problem.total)
    cost = float(problem.cost_rate)
    rates = problem.rates
    lots = [(k, lot) for k, p in enumerate(positions) for lot in p.lots]
    n_lots, n_pos = len(lots), len(positions)
    price = [float(positions[k].price) for k, _ in lots]
    gain = [price[j] - float(lot.cost_per_share) for j, (_, lot) in enumerate(lots)]
    rate = [
        float(
            rates.long_term_total
            if holding_term(lot.acquired, problem.as_of) is Term.LONG
            else rates.short_term_total
        )
        for _, lot in lots
    ]
    losing = sorted({k for j, (k, _) in enumerate(lots) if gain[j] < 0})
    # columns: sold shares per lot | money in, drift, above band, below band per position | tax
    # | idle cash | binaries
    col_buy, col_drift, col_over, col_under = (n_lots + i * n_pos for i in range(4))
    col_tax = n_lots + 4 * n_pos
    col_idle = col_tax + 1
    col_bin = {k: col_idle + 1 + i for i, k in enumerate(losing)}
    n_cols = col_idle + 1 + len(losing)
    lower = np.zeros(n_cols)
    upper = np.full(n_cols, highspy.kHighsInf)
    upper[:n_lots] = [float(lot.quantity) for _, lot in lots]
    for j, (k, lot) in enumerate(lots):
        short_gain = gain[j] > 0 and holding_term(lot.acquired, problem.as_of) is Term.SHORT
        washed = gain[j] < 0 and positions[k].symbol in problem.blocked_loss_sales
        unsold = positions[k].symbol in problem.unsold
        if washed or unsold or (short_gain and not problem.short_term_gains):
            upper[j] = 0.0
    for k, p in enumerate(positions):
        if p.symbol in problem.blocked_buys:
            upper[col_buy + k] = 0.0
    for col in col_bin.values():
        upper[col] = 1.0
    costs = np.zeros(n_cols)
    costs[:n_lots] = np.asarray(price) * cost
    costs[col_buy:col_drift] = cost
    costs[col_drift:col_over] = drift_penalty
    costs[col_over:col_tax] = band_penalty(price, gain, rate)
    costs[col_tax] = 1.0
    costs[col_idle] = idle_cash_penalty(cost, drift_penalty)

    rows = _Rows()
    by_position: list[list[int]] = [[] for _ in positions]
    for j, (k, _) in enumerate(lots):
        by_position[k].append(j)
    for k, p in enumerate(positions):
        value, px = float(p.value), float(p.price)
        move = {j: -px for j in by_position[k]} | {col_buy + k: 1.0}
        low, high = float(p.target - p.band) * total, float(p.target + p.band) * total
        rows.add(-highspy.kHighsInf, high - value, move | {col_over + k: -1.0})
        rows.add(low - value, highspy.kHighsInf, move | {col_under + k: 1.0})
        gap = value - float(p.target) * total
        rows.add(gap, highspy.kHighsInf, {j: -v for j, v in move.items()} | {col_drift + k: 1.0})
        rows.add(-gap, highspy.kHighsInf, move | {col_drift + k: 1.0})
    cash_terms = {j: price[j] * (1 - cost) for j in range(n_lots)}
    cash_terms |= {col_buy + k: -(1 + cost) for k in range(n_pos)}
    rows.add(float(CASH_CUSHION - problem.cash), highspy.kHighsInf, cash_terms)
    cash_target = float(1 - sum((p.target for p in positions), ZERO)) * total
    idle = {j: -v for j, v in cash_terms.items()} | {col_idle: 1.0}
    rows.add(float(problem.cash) - cash_target, highspy.kHighsInf, idle)
    if problem.gain_budget is not None:
        budget = float(problem.gain_budget)
        rows.add(-highspy.kHighsInf, budget, {j: gain[j] for j in range(n_lots)})
    long_rate = float(rates.long_term_total)
    tax = {col_tax: 1.0}
    rows.add(0.0, highspy.kHighsInf, {j: -long_rate * gain[j] for j in range(n_lots)} | tax)
    rows.add(0.0, highspy.kHighsInf, {j: -rate[j] * gain[j] for j in range(n_lots)} | tax)
    for k, col in col_bin.items():
        for j in by_position[k]:
            if gain[j] < 0:
                quantity = upper[j]
                rows.add(-highspy.kHighsInf, quantity, {j: 1.0, col: quantity})
        rows.add(-highspy.kHighsInf, 0.0, {col_buy + k: 1.0, col: -2.0 * total})

    h = _quiet_solver()
    h.setOptionValue("threads", 1)
    h.setOptionValue("time_limit", time_limit)
    h.setOptionValue("mip_rel_gap", 1e-6)
    h.addVars(n_cols, lower, upper)
    h.changeColsCost(n_cols, np.arange(n_cols, dtype=np.int32), costs)
    if col_bin:
        cols = np.asarray(list(col_bin.values()), dtype=np.int32)
        h.changeColsIntegrality(len(cols), cols, np.full(len(cols), highspy.HighsVarType.kInteger))
    h.addRows(
        len(rows.lower),
        np.asarray(rows.lower),
        np.asarray(rows.upper),
        len(rows.index),
        np.asarray(rows.starts, dtype=np.int32),
        np.asarray(rows.index, dtype=np.int32),
        np.asarray(rows.value),
    )
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"account {problem.account}: the optimiser found no plan ({status})")
    x = np.asarray(h.getSolution().col_value)
    sells: dict[str, Decimal] = {}
    for j, (_, lot) in enumerate(lots):
        shares = min(lot.quantity, Decimal(repr(float(x[j]))).quantize(SHARE_STEP))
        if shares > 0:
            sells[lot.lot_id] = shares
    buys: dict[str, Decimal] = {}
    for k, p in enumerate(positions):
        money = to_cents(Decimal(repr(float(x[col_buy + k]))))
        if money > 0:
            buys[p.symbol] = money
    objective = float(h.getInfo().objective_function_value)
    return Solved(TaxPlan("optimizer", sells, buys), objective, status)
