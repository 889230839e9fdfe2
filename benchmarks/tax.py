"""Tax cost of rebalancing: naive FIFO full rebalance vs the rule-based method vs the optimiser.

A fixed, seeded set of taxable households (several accounts each, dozens of securities, hundreds
of lots, mostly appreciated, some at a loss, positions drifted around their targets) is
rebalanced three ways, per account:

- naive: every position exactly to target, oldest lots sold first;
- rules: `rebal.tax.rulebased` (only what the bands require, cheapest lots, losses offset gains);
- optimiser: `rebal.tax.optimizer` (HiGHS MILP: tax + trading cost + drift penalty).

Every plan is priced exactly by `rebal.tax.plan.evaluate` (IRS netting per account) and must
leave every position within its band with non-negative cash: rules and optimiser reach the same
drift bound, and the optimiser leaves no more cash idle (above the cash target) than the rules
in any account (``idle_cash_optimizer_over_rules``, the largest excess, at most the cash cushion
the optimiser always keeps and a few cents of rounding). The script prints the total tax and
time of each method; its last line is
``tax_ratio_rules_vs_optimum=<total tax of rules / total tax of the optimiser>``.

    .venv/bin/python benchmarks/tax.py [--households N]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

import numpy as np

import rebal.versioned_cache  # noqa: F401 - first: numba's cache for this source version
from rebal.tax.lots import TaxLot
from rebal.tax.money import ZERO, to_cents
from rebal.tax.optimizer import optimal_plan
from rebal.tax.plan import (
    BAND_TOLERANCE,
    CASH_CUSHION,
    AccountProblem,
    PlanResult,
    Position,
    TaxPlan,
    evaluate,
    idle_cash,
    naive_fifo_plan,
)
from rebal.tax.rates import TaxRates
from rebal.tax.rulebased import rule_based_plan

SEED = 4_2026
AS_OF = date(2026, 11, 20)
UNIVERSE = 40
RATES = TaxRates(short_term=Decimal("0.37"), long_term=Decimal("0.20"), state=Decimal("0.05"))


def households(count: int, seed: int = SEED) -> list[list[AccountProblem]]:
    """`count` seeded households of 2-4 taxable accounts each."""
    rng = np.random.default_rng(seed)
    prices = np.round(rng.uniform(20, 300, UNIVERSE), 2)
    growth = rng.normal(0.12, 0.05, UNIVERSE)  # yearly price trend per security
    result = []
    for h in range(count):
        accounts = []
        for a in range(int(rng.integers(2, 5))):
            accounts.append(_account(rng, f"H{h:02d}-A{a}", prices, growth))
        result.append(accounts)
    return result


def _account(
    rng: np.random.Generator, name: str, prices: np.ndarray, growth: np.ndarray
) -> AccountProblem:
    k = int(rng.integers(12, 26))
    symbols = np.sort(rng.choice(UNIVERSE, size=k, replace=False))
    targets = rng.dirichlet(np.full(k, 2.0)) * 0.99  # 1 % cash target
    total = float(rng.uniform(2e5, 3e6))
    drifted = targets * np.exp(rng.normal(0.0, 0.3, k))
    cash = total * float(rng.uniform(0.005, 0.03))
    values = drifted / drifted.sum() * (total - cash)
    positions = []
    for slot, s in enumerate(symbols):
        target = Decimal(repr(round(float(targets[slot]), 6)))
        band = min(Decimal("0.03"), (target / 4).quantize(Decimal("0.000001")))
        price = Decimal(repr(float(prices[s])))
        n_lots = int(rng.integers(3, 13))
        split = rng.dirichlet(np.ones(n_lots)) * values[slot] / float(price)
        lots = []
        for i, shares in enumerate(split):
            age = int(rng.integers(5, 6 * 365))
            trend = math.exp(-float(growth[s]) * age / 365 + float(rng.normal(0, 0.08)))
            quantity = Decimal(repr(round(float(shares), 3)))
            if quantity <= 0:
                continue
            basis = to_cents(quantity * price * Decimal(repr(trend)))
            acquired = AS_OF - timedelta(days=age)
            lots.append(TaxLot(f"{s:02d}-{i}", quantity, basis, acquired))
        positions.append(Position(f"S{s:02d}", price, target, band, tuple(lots)))
    return AccountProblem(name, tuple(positions), to_cents(Decimal(repr(cash))), RATES, AS_OF)


def _run(
    name: str, method: Callable[[AccountProblem], TaxPlan], problems: list[AccountProblem]
) -> tuple[list[PlanResult], float]:
    start = time.perf_counter()
    plans = [method(p) for p in problems]
    elapsed = time.perf_counter() - start
    results = [evaluate(p, plan) for p, plan in zip(problems, plans, strict=True)]
    bad = [p.account for p, r in zip(problems, results, strict=True) if not r.feasible]
    if bad and name != "naive":
        raise SystemExit(f"{name}: plans outside the bands or with negative cash: {bad}")
    return results, elapsed


def _idle_excess(problems: list[AccountProblem]) -> Decimal:
    """The most idle cash the optimiser leaves in an account beyond what the rules leave."""
    return max(
        idle_cash(p, optimal_plan(p).plan) - idle_cash(p, rule_based_plan(p)) for p in problems
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=12)
    args = parser.parse_args()
    problems = [a for household in households(args.households) for a in household]
    lots = sum(len(p.lots) for a in problems for p in a.positions)
    print(
        f"{args.households} households, {len(problems)} taxable accounts, "
        f"{sum(len(a.positions) for a in problems)} positions, {lots} lots"
    )
    methods: list[tuple[str, Callable[[AccountProblem], TaxPlan]]] = [
        ("naive", naive_fifo_plan),
        ("rules", rule_based_plan),
        ("optimizer", lambda p: optimal_plan(p).plan),
    ]
    totals: dict[str, Decimal] = {}
    print(f"{'method':<10} {'tax':>14} {'traded':>16} {'cost':>12} {'max drift':>10} {'time s':>8}")
    for name, method in methods:
        results, elapsed = _run(name, method, problems)
        tax = sum((r.estimated_tax for r in results), ZERO)
        traded = sum((r.traded for r in results), ZERO)
        cost = sum((r.cost for r in results), ZERO)
        drift = max(
            max(abs(r.weights_after[p.symbol] - p.target) for p in a.positions)
            for a, r in zip(problems, results, strict=True)
        )
        totals[name] = tax
        print(
            f"{name:<10} {tax:>14,.2f} {traded:>16,.2f} {cost:>12,.2f} {float(drift):>10.4f} "
            f"{elapsed:>8.3f}"
        )
    idle = _idle_excess(problems)
    print(f"idle_cash_optimizer_over_rules={idle:,.2f}")
    if idle > CASH_CUSHION + BAND_TOLERANCE:
        raise SystemExit(f"the optimiser leaves {idle:,.2f} more cash idle than the rules")
    if not totals["optimizer"]:
        raise SystemExit("the optimum costs no tax: the households are too easy to compare on")
    naive = totals["naive"] / totals["optimizer"]
    print(f"naive FIFO full rebalance costs {naive:.1f}x the optimum")
    print(f"tax_ratio_rules_vs_optimum={totals['rules'] / totals['optimizer']:.4f}")


if __name__ == "__main__":
    main()
