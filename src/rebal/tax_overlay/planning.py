"""Taxable accounts re-planned lot by lot, and when not to rebalance them.

For each taxable account where a policy ran (other than liquidation, and outside households
rebalanced as one): build its `rebal.tax.plan.AccountProblem` (lots from the holdings, the run's
bands around the targets, cash after the flow less the cash kept, the gain budget, the
short-term switch and the wash-sale blocks), solve it (rule-based or the HiGHS optimiser), raise
cash owed at the least tax, even past the tax preferences where it must, and decide whether to
rebalance at all: an account with a withdrawal due soon is held, and with a drift cost a plan
whose tax exceeds the benefit of the drift it closes is shrunk or dropped. The plan becomes the
row's desired values.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from decimal import Decimal

import numpy as np

from rebal.core.trades import MICRO
from rebal.domain.formatting import number_text
from rebal.tax.lots import TaxLot
from rebal.tax.money import ZERO, money_shown, to_cents
from rebal.tax.optimizer import optimal_plan
from rebal.tax.plan import AccountProblem, Position, TaxPlan, evaluate
from rebal.tax.rulebased import least_tax_sales, rule_based_plan
from rebal.tax_overlay.convert import cents_to_money, micro_to_shares, piece, weight_to_decimal
from rebal.tax_overlay.quantities import method_quantities, order_shares
from rebal.tax_overlay.settings import PLANNER_METHODS
from rebal.tax_overlay.state import RunState
from rebal.tax_overlay.wash import plan_substitutes, record_desired_buys, record_policy_buys


def plan_taxable(run: RunState) -> None:
    """TaxPlan every taxable account where a policy ran, one by one (wash-safe in the run)."""
    policy = run.proposal.policy
    chosen = (policy >= 0) & (policy != run.liquidation) & run.is_taxable
    chosen[list(run.in_household)] = False
    rows = [int(i) for i in np.flatnonzero(chosen)]
    record_policy_buys(run, rows, chosen)
    for i in run.desired:  # household accounts' buys
        record_desired_buys(run, i)
    for i in rows:
        _plan_account(run, i)


def _plan_account(run: RunState, i: int) -> None:
    if _withdrawal_soon(run, i):
        return
    problem = _problem(run, i)
    if problem is None:
        run.note(
            i,
            "no tax-aware plan (no value to invest outside restricted securities); the "
            "policy's orders stand",
        )
        return
    plan = _solve(run, i, problem)
    if _owes(run, i, problem, plan):
        problem, plan = _raise_anyway(run, i, problem, plan)
    if run.settings.drift_cost is not None and run.spendable_cents(i) >= 0:
        worth = _worth_it(run, i, problem, plan)
        if worth is None:
            run.held.add(i)
            return
        plan = worth
    run.problems[i] = problem
    _apply(run, i, problem, plan)


def _withdrawal_soon(run: RunState, i: int) -> bool:
    """Hold row `i` (and say so) when a withdrawal is scheduled within `hold_days`."""
    s = run.settings
    when = s.withdrawal_dates.get(str(run.ids[i]))
    if when is None or run.spendable_cents(i) < 0 or run.book.arrays.pending_cents[i]:
        return False
    days = (when - s.as_of).days
    if not 0 <= days <= s.hold_days:
        return False
    run.held.add(i)
    run.note(
        i,
        f"rebalancing held: a withdrawal is scheduled on {when} (within {s.hold_days} "
        "days); its sales will rebalance without realising gains twice",
    )
    return True


def _problem(run: RunState, i: int) -> AccountProblem | None:
    """Row `i` as a planning problem; None when its lots do not match its holdings or it has
    nothing to invest outside restricted securities."""
    a, drift, s = run.book.arrays, run.proposal.drift, run.settings
    free = np.flatnonzero(run.used[i] & ~a.restricted[i])
    weight_sum = float(drift.target[i, free].sum())
    cash = cents_to_money(run.spendable_cents(i))
    account = str(run.ids[i])
    positions = []
    for k in free:
        symbol = str(run.symbols[i, k])
        lots = run.lots.lots(account, symbol)
        if sum((lot.quantity for lot in lots), ZERO) != micro_to_shares(a.quantity_micro[i, k]):
            return None
        positions.append((k, symbol, lots))
    value = cash + sum(
        (lot.quantity * run.price[sym] for _, sym, lots in positions for lot in lots), ZERO
    )
    if value <= 0 or weight_sum <= 0:
        return None
    scale = float(drift.total[i]) / float(value)
    hh = str(run.household[i])
    symbols = [sym for _, sym, _ in positions]
    no_buy, no_loss = run.guard_of(hh).blocked(hh, symbols)
    same = run.guard.same_security
    no_buy |= {sym for sym in symbols if any(same(sym, x) for x in run.lost[hh])}
    no_loss |= {sym for sym in symbols if any(same(sym, x) for x in run.bought[hh])}
    return AccountProblem(
        account=account,
        positions=tuple(
            Position(
                symbol=sym,
                price=run.price[sym],
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


def _solve(run: RunState, i: int, problem: AccountProblem) -> TaxPlan:
    """Solve `problem` by the run's method (the optimiser falls back to the rule-based plan),
    again without the sales the order rules would drop (`_dropped`), until none is left: a
    plan must not offset a gain with a loss that is never sold."""
    plan = _solve_once(run, i, problem)
    while dropped := _dropped(run, i, problem, plan):
        problem = replace(problem, unsold=problem.unsold | dropped)
        plan = _solve_once(run, i, problem)
    return plan


def _solve_once(run: RunState, i: int, problem: AccountProblem) -> TaxPlan:
    if run.settings.optimizer:
        try:
            run.method[i] = "optimizer"
            return optimal_plan(problem).plan
        except RuntimeError as exc:
            run.note(i, f"{exc}; rule-based plan used")
    run.method[i] = "rule-based"
    return rule_based_plan(problem)


def _dropped(run: RunState, i: int, problem: AccountProblem, plan: TaxPlan) -> frozenset[str]:
    """The symbols whose planned sale the order rules drop (`rebal.core.trades`): worth less
    than the minimum trade, or less than a whole share with --whole-shares; none when the
    account must raise cash (every sale is then kept)."""
    a, rules = run.book.arrays, run.config.rules
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


def _owes(run: RunState, i: int, problem: AccountProblem, plan: TaxPlan) -> bool:
    """Whether the account owes cash (a withdrawal, a debit: not the cash it would like to
    keep) that `plan` does not raise."""
    a = run.book.arrays
    if a.cash_cents[i] + a.pending_cents[i] >= 0:
        return False
    return evaluate(problem, plan).cash_after + cents_to_money(run.keep[i]) < 0


def _raise_anyway(
    run: RunState, i: int, problem: AccountProblem, plan: TaxPlan
) -> tuple[AccountProblem, TaxPlan]:
    """Cash owed (a withdrawal, a debit) comes before tax preferences, at the least tax.

    The least-tax sales that raise it (`least_tax_sales`: losses, then losses a wash sale
    would disallow, then the lowest gains) are sought under the short-term switch, then
    without it; they set what the account gives up: the wash-sale blocks if they sell a
    blocked loss, the switch if it had to go, and the gain budget grows to their gain, no
    further. The account is planned again on those terms: that plan when it raises the cash,
    else the sales alone. What was given up is said by the tax report
    (`rebal.tax_overlay.run_reports`), from the trades made.
    """
    floor = -cents_to_money(run.keep[i])
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
    run.raised.add(i)
    plan = _solve(run, i, stage)
    if _owes(run, i, stage, plan):
        plan = sales
    return stage, plan


def _worth_it(run: RunState, i: int, problem: AccountProblem, plan: TaxPlan) -> TaxPlan | None:
    """The plan if its tax is worth the drift it closes; else the plan realising no net
    gain (None when that trades nothing), saying so in the account's note."""
    drift_cost = run.settings.drift_cost
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
        return plan
    why = (
        f"estimated tax {money_shown(result.estimated_tax)} exceeds the benefit "
        f"{money_shown(benefit)} of closing the drift ({money_shown(closed)} at a drift cost of "
        f"{number_text(drift_cost * 10000)} bps)"
    )
    budget = ZERO if problem.gain_budget is None else min(problem.gain_budget, ZERO)
    smaller = _solve(run, i, replace(problem, gain_budget=budget))
    if not smaller.sells and not smaller.buys:
        run.note(i, f"rebalancing held: {why}")
        return None
    run.note(i, f"trades shrunk to those realising no net gain: {why}")
    return smaller


def _apply(run: RunState, i: int, problem: AccountProblem, plan: TaxPlan) -> None:
    """Turn `plan` into desired values of row `i` (lots trimmed to the lot method)."""
    owner = problem.lot_owner()
    pieces: dict[str, list[TaxLot]] = defaultdict(list)
    for lot_id, shares in plan.sells.items():
        position = owner[lot_id]
        lot = next(lot for lot in position.lots if lot.lot_id == lot_id)
        pieces[position.symbol].append(piece(lot, shares))
    wanted = {s: sum((p.quantity for p in parts), ZERO) for s, parts in pieces.items()}
    whole_shares = run.config.rules.whole_shares
    if run.settings.lot_method in PLANNER_METHODS:
        quantities = {s: order_shares(q, whole_shares) for s, q in wanted.items()}
        for s, parts in pieces.items():
            run.pieces[(i, s)] = parts
    else:
        # Cash owed is raised whatever the gain of the method's lots (the report says it).
        trim = replace(problem, gain_budget=None) if i in run.raised else problem
        quantities = method_quantities(trim, wanted, run.settings, whole_shares)
    buys: dict[str, Decimal] = dict(plan.buys)
    for symbol, amount in plan_substitutes(run, i, problem, plan).items():
        buys[symbol] = buys.get(symbol, ZERO) + amount
    a, drift = run.book.arrays, run.proposal.drift
    desired = np.nan_to_num(drift.value[i]).copy()
    for symbol, k in run.symbol_slots(i).items():
        sold = int(quantities.get(symbol, ZERO) * MICRO)
        bought = float(buys.get(symbol, ZERO))
        if sold or bought:
            desired[k] = (a.quantity_micro[i, k] - sold) / MICRO * a.price[i, k] + bought
    run.desired[i], run.with_flow[i] = desired, True
    hh = str(run.household[i])
    for symbol in (s for s, v in buys.items() if v > 0):
        run.record_buy(i, symbol)
    for symbol, parts in pieces.items():
        if any(p.cost_per_share > run.price[symbol] for p in parts):
            run.lost[hh].add(symbol)
