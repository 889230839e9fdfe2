"""Taxable accounts re-planned lot by lot, and when not to rebalance them.

For each taxable account where a policy ran (other than liquidation, and outside households
rebalanced as one): build its `rebal.tax.plan.AccountProblem` (lots from the holdings, the run's
bands around the targets, cash after the flow less the cash kept, the gain budget, the
short-term switch and the wash-sale blocks), solve it (rule-based or the HiGHS optimiser), raise
cash owed at the least tax, even past the tax preferences where it must, and decide whether to
rebalance at all: an account with a withdrawal due soon is held, and with a drift cost a plan
whose tax exceeds the benefit of the drift it closes is shrunk or dropped. The plan becomes the
row's desired values. Accounts are planned in book order, each seeing what the earlier ones buy
and sell at a loss in its household (`rebal.tax_overlay.run_trades`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from decimal import Decimal
from itertools import chain

import numpy as np

from rebal.core.trades import MICRO
from rebal.domain.formatting import number_text
from rebal.tax.lots import TaxLot
from rebal.tax.money import ZERO, money_shown, to_cents
from rebal.tax.optimizer import optimal_plan
from rebal.tax.plan import AccountProblem, Position, TaxPlan, evaluate
from rebal.tax.rulebased import least_tax_sales, rule_based_plan
from rebal.tax_overlay.context import RunContext
from rebal.tax_overlay.convert import cents_to_money, micro_to_shares, piece, weight_to_decimal
from rebal.tax_overlay.decisions import Decisions, Replan
from rebal.tax_overlay.quantities import method_quantities, order_shares
from rebal.tax_overlay.run_trades import (
    NO_TRADES,
    HouseholdTrades,
    RunTrades,
    policy_buys,
    replanned_buys,
    with_buys,
)
from rebal.tax_overlay.settings import PLANNER_METHODS
from rebal.tax_overlay.wash import plan_substitutes

#: The reason of a taxable account the planner cannot take.
NO_PLAN = (
    "no tax-aware plan (no value to invest outside restricted securities); the policy's "
    "orders stand"
)


@dataclass(frozen=True)
class Solution:
    """A plan, the method that found it (`tax.method`) and what the account's reason adds."""

    plan: TaxPlan
    method: str
    notes: tuple[str, ...] = ()

    def after(self, earlier: Solution) -> Solution:
        """This solution, found after `earlier`: its notes follow the earlier ones."""
        return replace(self, notes=earlier.notes + self.notes)

    def noting(self, note: str) -> Solution:
        """This solution, its notes ending with `note`."""
        return replace(self, notes=(*self.notes, note))


@dataclass(frozen=True)
class AccountPlan:
    """The planning of one taxable account: the row re-planned or held (its method, notes,
    lots and problem), and what its plan buys and sells at a loss in the household."""

    decisions: Decisions
    bought: tuple[str, ...] = ()
    lost: frozenset[str] = frozenset()


def plan_taxable(ctx: RunContext, decided: Decisions) -> tuple[Decisions, RunTrades]:
    """Plan every taxable account where a policy ran that `decided` (the households) left to
    itself, one by one (wash-safe in the run); and what the run then buys and sells at a loss
    per household."""
    policy = ctx.proposal.policy
    chosen = (policy >= 0) & (policy != ctx.liquidation) & ctx.is_taxable
    # Taxable rows the earlier steps re-plan or hold are those of households rebalanced as one.
    chosen[[*decided.replans, *decided.held]] = False
    rows = [int(i) for i in np.flatnonzero(chosen)]
    trades = with_buys(
        {}, chain(policy_buys(ctx, decided, rows, chosen), replanned_buys(ctx, decided))
    )
    plans = []
    for i in rows:
        hh = str(ctx.household[i])
        before = trades.get(hh, NO_TRADES)
        plan = _plan_account(ctx, i, before)
        plans.append(plan.decisions)
        trades[hh] = before.buying(i, plan.bought).losing(plan.lost)
    return Decisions.merge(plans), trades


def _plan_account(ctx: RunContext, i: int, trades: HouseholdTrades) -> AccountPlan:
    """Row `i` planned, given what the run trades in its household so far."""
    soon = _withdrawal_soon(ctx, i)
    if soon is not None:
        return AccountPlan(Decisions(held=frozenset({i}), notes={i: (soon,)}))
    problem = _problem(ctx, i, trades)
    if problem is None:
        return AccountPlan(Decisions(notes={i: (NO_PLAN,)}))
    solved = _solve(ctx, i, problem)
    raised = _owes(ctx, i, problem, solved.plan)
    if raised:
        problem, again = _raise_anyway(ctx, i, problem, solved.plan)
        solved = again.after(solved)
    why = None
    if ctx.settings.drift_cost is not None and ctx.spendable_cents(i) >= 0:
        why = _tax_above_benefit(ctx, problem, solved.plan)
    if why is not None:  # only the trades realising no net gain, if any
        budget = ZERO if problem.gain_budget is None else min(problem.gain_budget, ZERO)
        smaller = _solve(ctx, i, replace(problem, gain_budget=budget)).after(solved)
        if not smaller.plan.sells and not smaller.plan.buys:
            notes = (*smaller.notes, f"rebalancing held: {why}")
            held = Decisions(held=frozenset({i}), notes={i: notes}, methods={i: smaller.method})
            return AccountPlan(held)
        solved = smaller.noting(f"trades shrunk to those realising no net gain: {why}")
    return _apply(ctx, i, problem, solved, raised, trades.lost)


def _withdrawal_soon(ctx: RunContext, i: int) -> str | None:
    """Why row `i` is held, when a withdrawal is scheduled within `hold_days`; else None."""
    s = ctx.settings
    when = s.withdrawal_dates.get(str(ctx.ids[i]))
    if when is None or ctx.spendable_cents(i) < 0 or ctx.book.arrays.pending_cents[i]:
        return None
    days = (when - s.as_of).days
    if not 0 <= days <= s.hold_days:
        return None
    return (
        f"rebalancing held: a withdrawal is scheduled on {when} (within {s.hold_days} "
        "days); its sales will rebalance without realising gains twice"
    )


def _problem(ctx: RunContext, i: int, trades: HouseholdTrades) -> AccountProblem | None:
    """Row `i` as a planning problem (blocked from what the household's history and this run's
    `trades` make a wash sale); None when its lots do not match its holdings or it has
    nothing to invest outside restricted securities."""
    a, drift, s = ctx.book.arrays, ctx.proposal.drift, ctx.settings
    free = np.flatnonzero(ctx.used[i] & ~a.restricted[i])
    weight_sum = float(drift.target[i, free].sum())
    cash = cents_to_money(ctx.spendable_cents(i))
    account = str(ctx.ids[i])
    positions = []
    for k in free:
        symbol = str(ctx.symbols[i, k])
        lots = ctx.lots.lots(account, symbol)
        if sum((lot.quantity for lot in lots), ZERO) != micro_to_shares(a.quantity_micro[i, k]):
            return None
        positions.append((k, symbol, lots))
    value = cash + sum(
        (lot.quantity * ctx.price[sym] for _, sym, lots in positions for lot in lots), ZERO
    )
    if value <= 0 or weight_sum <= 0:
        return None
    scale = float(drift.total[i]) / float(value)
    hh = str(ctx.household[i])
    symbols = [sym for _, sym, _ in positions]
    no_buy, no_loss = ctx.guard_of(hh).blocked(hh, symbols)
    same = ctx.guard.same_security
    no_buy |= {sym for sym in symbols if any(same(sym, x) for x in trades.lost)}
    no_loss |= {sym for sym in symbols if any(same(sym, x) for x in trades.bought)}
    return AccountProblem(
        account=account,
        positions=tuple(
            Position(
                symbol=sym,
                price=ctx.price[sym],
                target=weight_to_decimal(drift.target[i, k] / weight_sum),
                band=weight_to_decimal(
                    max(drift.target[i, k] - drift.edges.band_low[i, k], 0.0) * scale
                ),
                lots=lots,
            )
            for k, sym, lots in positions
        ),
        cash=cash,
        rates=s.rates,
        as_of=s.as_of,
        gain_budget=s.gain_budget,
        short_term_gains=s.short_term_gains,
        blocked_buys=frozenset(no_buy),
        blocked_loss_sales=frozenset(no_loss),
    )


def _solve(ctx: RunContext, i: int, problem: AccountProblem) -> Solution:
    """Solve `problem` by the run's method (the optimiser falls back to the rule-based plan),
    again without the sales the order rules would drop (`_dropped`), until none is left: a
    plan must not offset a gain with a loss that is never sold."""
    solution = _solve_once(ctx, problem)
    while dropped := _dropped(ctx, i, problem, solution.plan):
        problem = replace(problem, unsold=problem.unsold | dropped)
        solution = _solve_once(ctx, problem).after(solution)
    return solution


def _solve_once(ctx: RunContext, problem: AccountProblem) -> Solution:
    if ctx.settings.optimizer:
        try:
            return Solution(optimal_plan(problem).plan, "optimizer")
        except RuntimeError as exc:
            return Solution(
                rule_based_plan(problem), "rule-based", (f"{exc}; rule-based plan used",)
            )
    return Solution(rule_based_plan(problem), "rule-based")


def _dropped(ctx: RunContext, i: int, problem: AccountProblem, plan: TaxPlan) -> frozenset[str]:
    """The symbols whose planned sale the order rules drop (`rebal.core.trades`): worth less
    than the minimum trade, or less than a whole share with --whole-shares; none when the
    account must raise cash (every sale is then kept)."""
    a, rules = ctx.book.arrays, ctx.config.rules
    if a.cash_cents[i] + a.pending_cents[i] < 0:
        return frozenset()
    owner = problem.lot_owner()
    shares: dict[str, Decimal] = defaultdict(Decimal)
    for lot_id, quantity in plan.sells.items():
        shares[owner[lot_id].symbol] += quantity
    minimum = cents_to_money(rules.min_trade_cents)
    price = {p.symbol: p.price for p in problem.positions}
    return frozenset(
        symbol
        for symbol, quantity in shares.items()
        if quantity > 0
        and to_cents(order_shares(quantity, rules.whole_shares) * price[symbol]) < minimum
    )


def _owes(ctx: RunContext, i: int, problem: AccountProblem, plan: TaxPlan) -> bool:
    """Whether the account owes cash (a withdrawal, a debit: not the cash it would like to
    keep) that `plan` does not raise."""
    a = ctx.book.arrays
    if a.cash_cents[i] + a.pending_cents[i] >= 0:
        return False
    return evaluate(problem, plan).cash_after + cents_to_money(ctx.keep[i]) < 0


def _raise_anyway(
    ctx: RunContext, i: int, problem: AccountProblem, plan: TaxPlan
) -> tuple[AccountProblem, Solution]:
    """Cash owed (a withdrawal, a debit) comes before tax preferences, at the least tax.

    The least-tax sales that raise it (`least_tax_sales`: losses, then losses a wash sale
    would disallow, then the lowest gains) are sought under the short-term switch, then
    without it; they set what the account gives up: the wash-sale blocks if they sell a
    blocked loss, the switch if it had to go, and the gain budget grows to their gain, no
    further. The account is planned again on those terms (the problem returned): that plan
    when it raises the cash, else the sales alone. What was given up is said by the tax report
    (`rebal.tax_overlay.run_reports`), from the trades made.
    """
    floor = -cents_to_money(ctx.keep[i])
    for stage in (problem, replace(problem, short_term_gains=True)):
        sales = least_tax_sales(stage, floor)
        if evaluate(stage, sales).cash_after >= floor:
            break
    held = {lot.lot_id: (p, lot) for p in stage.positions for lot in p.lots}
    washes = any(
        p.symbol in stage.blocked_loss_sales and lot.cost_per_share > p.price
        for p, lot in (held[lot_id] for lot_id in sales.sells)
    )
    if washes:
        stage = replace(stage, blocked_loss_sales=frozenset())
    if stage.gain_budget is not None:
        needed = evaluate(stage, sales)
        stage = replace(
            stage, gain_budget=max(stage.gain_budget, needed.realised_st + needed.realised_lt)
        )
    solution = _solve(ctx, i, stage)
    if _owes(ctx, i, stage, solution.plan):
        solution = replace(solution, plan=sales)
    return stage, solution


def _tax_above_benefit(ctx: RunContext, problem: AccountProblem, plan: TaxPlan) -> str | None:
    """Why `plan` is not worth its tax (its estimated tax exceeds the benefit of the drift it
    closes, at the run's drift cost); None when it is."""
    drift_cost = ctx.settings.drift_cost
    assert drift_cost is not None
    result = evaluate(problem, plan)
    total = problem.total
    closed = sum(
        (
            abs(p.value - p.target * total)
            - abs(result.weights_after[p.symbol] * total - p.target * total)
            for p in problem.positions
        ),
        ZERO,
    )
    benefit = to_cents(max(closed, ZERO) * drift_cost)
    if result.estimated_tax <= benefit:
        return None
    return (
        f"estimated tax {money_shown(result.estimated_tax)} exceeds the benefit "
        f"{money_shown(benefit)} of closing the drift ({money_shown(closed)} at a drift cost of "
        f"{number_text(drift_cost * 10000)} bps)"
    )


def _apply(
    ctx: RunContext,
    i: int,
    problem: AccountProblem,
    solved: Solution,
    raised: bool,
    lost: frozenset[str],
) -> AccountPlan:
    """Row `i` re-planned to the solved plan's desired values (lots trimmed to the lot method), with
    substitutes for blocked buys (none like what the household sells at a loss: `lost`)."""
    plan = solved.plan
    owner = problem.lot_owner()
    pieces: dict[str, list[TaxLot]] = defaultdict(list)
    for lot_id, shares in plan.sells.items():
        position = owner[lot_id]
        lot = next(lot for lot in position.lots if lot.lot_id == lot_id)
        pieces[position.symbol].append(piece(lot, shares))
    wanted = {s: sum((p.quantity for p in parts), ZERO) for s, parts in pieces.items()}
    whole_shares = ctx.config.rules.whole_shares
    lots: dict[tuple[int, str], tuple[TaxLot, ...]] = {}
    if ctx.settings.lot_method in PLANNER_METHODS:
        quantities = {s: order_shares(q, whole_shares) for s, q in wanted.items()}
        lots = {(i, s): tuple(parts) for s, parts in pieces.items()}
    else:
        # Cash owed is raised whatever the gain of the method's lots (the report says it).
        trim = replace(problem, gain_budget=None) if raised else problem
        quantities = method_quantities(trim, wanted, ctx.settings, whole_shares)
    buys: dict[str, Decimal] = dict(plan.buys)
    substitutes, substituted = plan_substitutes(ctx, i, problem, plan, lost)
    for symbol, amount in substitutes.items():
        buys[symbol] = buys.get(symbol, ZERO) + amount
    a, drift = ctx.book.arrays, ctx.proposal.drift
    desired = np.nan_to_num(drift.value[i]).copy()
    for symbol, k in ctx.symbol_slots(i).items():
        sold = int(quantities.get(symbol, ZERO) * MICRO)
        bought = float(buys.get(symbol, ZERO))
        if sold or bought:
            desired[k] = (a.quantity_micro[i, k] - sold) / MICRO * a.price[i, k] + bought
    notes = (*solved.notes, *substituted)
    decisions = Decisions(
        replans={i: Replan(desired, with_flow=True)},
        notes={i: notes} if notes else {},
        methods={i: solved.method},
        lots=lots,
        problems={i: problem},
        raised=frozenset({i}) if raised else frozenset(),
    )
    return AccountPlan(
        decisions,
        bought=tuple(s for s, v in buys.items() if v > 0),
        lost=frozenset(
            s for s, parts in pieces.items() if any(p.cost_per_share > ctx.price[s] for p in parts)
        ),
    )
