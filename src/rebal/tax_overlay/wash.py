"""Wash-sale guards within a tax-aware run, and the substitutes bought instead.

A household may not buy what it sold at a loss in the last 30 days, nor sell at a loss what it
bought: from its recent trades (`--transactions`, in `RunState.guard`) and from what this run
buys and sells at a loss (`RunState.bought` / `RunState.lost`, recorded here). A buy the rule
blocks goes to the first wash-safe member of the security's substitute group that the account
holds a slot for, or its money stays in cash; the account's note says which.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from rebal.core.trades import MICRO
from rebal.core.types import BoolArray
from rebal.tax.money import ZERO
from rebal.tax.plan import AccountProblem, Position, TaxPlan, evaluate
from rebal.tax_overlay.convert import isin
from rebal.tax_overlay.state import RunState


def record_policy_buys(run: RunState, rows: list[int], replanned: BoolArray) -> None:
    """Record the policy's buys in the other accounts of the households of `rows`: they
    block loss sales there (wash sales within the run)."""
    skip = replanned.copy()
    skip[[*run.desired, *run.held]] = True
    buyer, slot = np.nonzero(run.proposal.trades.buy_cents > 0)
    keep = ~skip[buyer] & isin(run.household[buyer], run.household[rows])
    for i, k in zip(buyer[keep], slot[keep], strict=True):
        run.record_buy(int(i), str(run.symbols[i, k]))


def record_desired_buys(run: RunState, i: int) -> None:
    """Record the buys of re-planned row `i` (its desired values above its holdings)."""
    held = np.nan_to_num(run.proposal.drift.value[i])
    for k in np.flatnonzero(run.desired[i] > held + 0.005):
        run.record_buy(i, str(run.symbols[i, k]))


def wash_safe_buys(run: RunState) -> None:
    """IRA/Roth accounts, and households rebalanced as one, buy nothing the household sold
    at a loss in the last 30 days (in an IRA the loss would be lost for good): such a buy
    goes to a wash-safe substitute, or its money stays in cash."""
    losers = list({d.household for d in run.guard.recent_losses})
    if not losers:
        return
    buys = (run.proposal.trades.buy_cents > 0).any(axis=1)
    rows = ~run.is_taxable & buys & (run.proposal.policy >= 0)
    rows[list(run.held)] = False
    rows[list(run.desired)] = True
    rows &= isin(run.household, losers)
    for i in map(int, np.flatnonzero(rows)):
        _wash_safe_row(run, i)


def _wash_safe_row(run: RunState, i: int) -> None:
    """Move row `i`'s blocked buys to substitutes (or cash), re-planning the row if any."""
    a, drift, t = run.book.arrays, run.proposal.drift, run.proposal.trades
    held = np.nan_to_num(drift.value[i])
    desired = run.desired.get(i)
    if desired is None:  # the policy's orders as desired values
        price = np.nan_to_num(a.price[i])
        desired = held - t.sell_micro[i] / MICRO * price + t.buy_cents[i] / 100.0
    desired = desired.copy()
    hh = str(run.household[i])
    changed = False
    for symbol, k in run.symbol_slots(i).items():
        extra = desired[k] - held[k]
        if extra <= 0.005 or run.guard_of(hh).buy_blocker(hh, symbol) is None:
            continue
        desired[k], changed = held[k], True
        other = _safe_substitute(run, i, symbol, frozenset({symbol}))
        if other is not None:
            desired[run.symbol_slots(i)[other]] += extra
        else:
            run.note(
                i,
                f"{symbol} not bought (wash sale: sold at a loss in the household in the "
                "last 30 days); its money stays in cash",
            )
    if changed:
        run.desired[i] = desired
        run.with_flow.setdefault(i, True)
        run.method.setdefault(i, "wash-safe")


def plan_substitutes(
    run: RunState, i: int, problem: AccountProblem, plan: TaxPlan
) -> dict[str, Decimal]:
    """Money for substitutes of buys the wash-sale rule blocked: what each blocked position
    ends below its band goes to the first wash-safe member of its group with a slot."""
    if not problem.blocked_buys or not run.settings.substitutes:
        return {}
    below = evaluate(problem, plan).outside_band
    out: dict[str, Decimal] = {}
    for p in problem.positions:
        if p.symbol not in problem.blocked_buys or p.symbol not in below:
            continue
        if p.value - _plan_sold(plan, p) > (p.target - p.band) * problem.total:
            continue  # above its band, not below
        other = _safe_substitute(run, i, p.symbol, problem.blocked_buys)
        if other is not None:
            out[other] = out.get(other, ZERO) + below[p.symbol]
    return out


def _safe_substitute(run: RunState, i: int, symbol: str, blocked: frozenset[str]) -> str | None:
    """The first member of `symbol`'s substitute group that row `i` has a slot for and may
    buy without a wash sale; the account's note says what was bought instead."""
    slots = run.symbol_slots(i)
    hh = str(run.household[i])
    group = next((g for g in run.settings.substitutes if symbol in g), ())
    for other in group:
        safe = (
            other in slots
            and other not in blocked
            and not run.guard.same_security(other, symbol)
            and run.guard_of(hh).buy_blocker(hh, other) is None
            and not any(run.guard.same_security(other, x) for x in run.lost[hh])
        )
        if safe:
            run.note(
                i,
                f"{symbol} not bought (wash sale: sold at a loss in the household in the "
                f"last 30 days); {other} bought instead",
            )
            return other
    return None


def _plan_sold(plan: TaxPlan, position: Position) -> Decimal:
    """Market value of `position` that `plan` sells."""
    ids = {lot.lot_id for lot in position.lots}
    shares = sum((q for lot_id, q in plan.sells.items() if lot_id in ids), ZERO)
    return shares * position.price
