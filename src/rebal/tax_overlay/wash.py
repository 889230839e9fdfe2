"""Wash-sale guards within a tax-aware run, and the substitutes bought instead.

A household may not buy what it sold at a loss in the last 30 days, nor sell at a loss what it
bought: from its recent trades (`--transactions`, `RunContext.guard_of`) and from what this run
buys and sells at a loss (`rebal.tax_overlay.run_trades`). A buy the rule blocks goes to the
first wash-safe member of the security's substitute group that the account holds a slot for, or
its money stays in cash; the account's note says which.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from rebal.core.trades import MICRO
from rebal.tax.money import ZERO
from rebal.tax.plan import AccountProblem, Position, TaxPlan, evaluate
from rebal.tax_overlay.context import RunContext
from rebal.tax_overlay.convert import isin
from rebal.tax_overlay.decisions import Decisions, Replan

#: A substitute bought instead of a blocked buy, and the note saying so.
Substitute = tuple[str, str]


def wash_safe_buys(ctx: RunContext, decided: Decisions) -> Decisions:
    """IRA/Roth accounts, and households rebalanced as one, buy nothing the household sold
    at a loss in the last 30 days (in an IRA the loss would be lost for good): such a buy
    goes to a wash-safe substitute, or its money stays in cash. Rows `decided` re-plans keep
    their method and flow; the others are re-planned as ``wash-safe``."""
    losers = list({d.household for d in ctx.guard.recent_losses})
    if not losers:
        return Decisions()
    buys = (ctx.proposal.trades.buy_cents > 0).any(axis=1)
    rows = ~ctx.is_taxable & buys & (ctx.proposal.policy >= 0)
    rows[list(decided.held)] = False
    rows[list(decided.replans)] = True
    rows &= isin(ctx.household, losers)
    return Decisions.merge(_wash_safe_row(ctx, decided, i) for i in map(int, np.flatnonzero(rows)))


def _wash_safe_row(ctx: RunContext, decided: Decisions, i: int) -> Decisions:
    """Row `i`'s blocked buys moved to substitutes (or cash): the row re-planned, if any."""
    a, drift, t = ctx.book.arrays, ctx.proposal.drift, ctx.proposal.trades
    held = np.nan_to_num(drift.value[i])
    earlier = decided.replans.get(i)
    if earlier is None:  # the policy's orders as desired values
        price = np.nan_to_num(a.price[i])
        desired = held - t.sell_micro[i] / MICRO * price + t.buy_cents[i] / 100.0
    else:
        desired = earlier.desired.copy()
    hh = str(ctx.household[i])
    slots = ctx.symbol_slots(i)
    notes: list[str] = []
    for symbol, k in slots.items():
        extra = desired[k] - held[k]
        if extra <= 0.005 or ctx.guard_of(hh).buy_blocker(hh, symbol) is None:
            continue
        desired[k] = held[k]
        other = _safe_substitute(ctx, i, symbol, frozenset({symbol}), frozenset())
        if other is not None:
            desired[slots[other[0]]] += extra
            notes.append(other[1])
        else:
            notes.append(
                f"{symbol} not bought (wash sale: sold at a loss in the household in the "
                "last 30 days); its money stays in cash"
            )
    if not notes:
        return Decisions()
    if earlier is not None:
        return Decisions(replans={i: Replan(desired, earlier.with_flow)}, notes={i: tuple(notes)})
    return Decisions(
        replans={i: Replan(desired, with_flow=True)},
        notes={i: tuple(notes)},
        methods={i: "wash-safe"},
    )


def plan_substitutes(
    ctx: RunContext, i: int, problem: AccountProblem, plan: TaxPlan, lost: frozenset[str]
) -> tuple[dict[str, Decimal], list[str]]:
    """Money for substitutes of buys the wash-sale rule blocked: what each blocked position
    ends below its band goes to the first wash-safe member of its group with a slot (none
    that this run sells at a loss in the household: `lost`); and the notes saying so."""
    if not problem.blocked_buys or not ctx.settings.substitutes:
        return {}, []
    below = evaluate(problem, plan).outside_band
    out: dict[str, Decimal] = {}
    notes: list[str] = []
    for p in problem.positions:
        if p.symbol not in problem.blocked_buys or p.symbol not in below:
            continue
        if p.value - _plan_sold(plan, p) > (p.target - p.band) * problem.total:
            continue  # above its band, not below
        other = _safe_substitute(ctx, i, p.symbol, problem.blocked_buys, lost)
        if other is not None:
            out[other[0]] = out.get(other[0], ZERO) + below[p.symbol]
            notes.append(other[1])
    return out, notes


def _safe_substitute(
    ctx: RunContext, i: int, symbol: str, blocked: frozenset[str], lost: frozenset[str]
) -> Substitute | None:
    """The first member of `symbol`'s substitute group that row `i` has a slot for and may
    buy without a wash sale (not in `blocked`, nor like a symbol this run sells at a loss in
    the household: `lost`), with the note saying it was bought instead."""
    slots = ctx.symbol_slots(i)
    hh = str(ctx.household[i])
    group = next((g for g in ctx.settings.substitutes if symbol in g), ())
    for other in group:
        safe = (
            other in slots
            and other not in blocked
            and not ctx.guard.same_security(other, symbol)
            and ctx.guard_of(hh).buy_blocker(hh, other) is None
            and not any(ctx.guard.same_security(other, x) for x in lost)
        )
        if safe:
            note = (
                f"{symbol} not bought (wash sale: sold at a loss in the household in the "
                f"last 30 days); {other} bought instead"
            )
            return other, note
    return None


def _plan_sold(plan: TaxPlan, position: Position) -> Decimal:
    """Market value of `position` that `plan` sells."""
    ids = {lot.lot_id for lot in position.lots}
    shares = sum((q for lot_id, q in plan.sells.items() if lot_id in ids), ZERO)
    return shares * position.price
