"""Households rebalanced as one portfolio (`household=True`).

Accounts of one household on one model are placed together by `rebal.tax.location.locate`: sales
happen in IRA/Roth accounts and taxable accounts only buy. A household that cannot be treated so
(different models, an account that cannot trade, no tax-deferred account, a taxable account that
must raise cash, or a placement that leaves a position outside its band) has its accounts
rebalanced alone, and the accounts that trade say why. Each household's outcome is a
`Decisions`: its accounts re-planned (placed), or held (inside its bands as one), or only notes.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd

from rebal.core.types import IntArray
from rebal.tax.location import locate
from rebal.tax.money import money_shown
from rebal.tax.rates import AccountType
from rebal.tax_overlay.context import RunContext
from rebal.tax_overlay.decisions import Decisions, Replan


def rebalance_households(ctx: RunContext) -> Decisions:
    """Rebalance each eligible household of two or more accounts as one portfolio."""
    groups = pd.Series(np.arange(len(ctx.ids))).groupby(ctx.household, sort=False).indices
    outcomes = []
    for name, members in groups.items():
        rows = np.asarray(members, dtype=np.int64)
        if len(rows) < 2:
            continue
        outcome = _obstacle(ctx, rows) or _place(ctx, str(name), [int(i) for i in rows])
        if isinstance(outcome, str):  # said where it matters: the accounts that trade
            note = (f"household {name}: account rebalanced alone ({outcome})",)
            trading = [int(i) for i in rows[ctx.proposal.policy[rows] >= 0]]
            outcome = Decisions(notes=dict.fromkeys(trading, note))
        outcomes.append(outcome)
    return Decisions.merge(outcomes)


def _obstacle(ctx: RunContext, rows: IntArray) -> str | None:
    """Why the household of `rows` cannot be rebalanced as one, before placing it; or None."""
    a = ctx.book.arrays
    models = set(ctx.model[rows])
    if len(models) > 1:
        return "its accounts have different models: " + ", ".join(sorted(map(str, models)))
    if not ctx.checkable[rows].all() or a.liquidate[rows].any():
        return "an account cannot be checked, cannot trade or is being liquidated"
    if (a.restricted[rows] & ctx.used[rows]).any():
        return "an account has a restricted security"
    if ctx.is_taxable[rows].all():
        return "no tax-deferred account to trade in"
    if any(ctx.is_taxable[i] and ctx.spendable_cents(int(i)) < 0 for i in rows):
        return "a taxable account must raise cash"
    return None


def _place(ctx: RunContext, name: str, rows: list[int]) -> Decisions | str:
    """The household's accounts held (inside its bands as one portfolio, no flow) or
    re-planned to its holdings' placement (`rebal.tax.location.locate`); or the reason to
    treat them alone instead when the placement cannot bring every position into its band."""
    a, drift = ctx.book.arrays, ctx.proposal.drift
    names: list[str] = []
    for i in rows:
        names += [s for s in ctx.symbol_slots(i) if s not in names]
    index = {s: j for j, s in enumerate(names)}
    held = np.zeros((len(rows), len(names)))
    weight = np.zeros(len(names))
    low = np.zeros(len(names))
    high = np.zeros(len(names))
    for r, i in enumerate(rows):
        for s, k in ctx.symbol_slots(i).items():
            j = index[s]
            held[r, j] = drift.value[i, k]
            weight[j] = drift.target[i, k]
            low[j] = drift.edges.band_low[i, k]
            high[j] = max(high[j], drift.edges.band_high[i, k])
    total = float(drift.total[rows].sum())
    share = held.sum(axis=0) / total
    breach = bool(((share < low - 1e-12) | (share > high + 1e-12)).any())
    flow = any(a.pending_cents[i] != 0 or ctx.spendable_cents(i) < 0 for i in rows)
    if not breach and not flow:
        inside = (f"household {name} is inside its bands as one portfolio: no trades",)
        return Decisions(held=frozenset(rows), notes=dict.fromkeys(rows, inside))
    investable = np.array([ctx.spendable_cents(i) / 100.0 for i in rows]) + held.sum(axis=1)
    location = locate(
        investable,
        held,
        weight / weight.sum(),
        ctx.is_taxable[rows],
        np.array([ctx.kind[i] == AccountType.ROTH.value for i in rows]),
        np.array([s in ctx.settings.tax_inefficient for s in names]),
    )
    after = location.desired.sum(axis=0) / (total + a.pending_cents[rows].sum() / 100.0)
    outside = [names[j] for j in np.flatnonzero((after < low - 1e-9) | (after > high + 1e-9))]
    if outside:
        return (
            f"the tax-deferred accounts cannot bring {', '.join(outside)} within the bands "
            "without sales in taxable accounts"
        )
    text = (
        f"household {name} rebalanced as one portfolio of {len(rows)} accounts: sales in "
        "tax-deferred accounts, taxable accounts only buy"
    )
    over = [
        f"{names[j]} {money_shown(Decimal(repr(float(v))))}"
        for j, v in enumerate(location.over)
        if v >= 0.01
    ]
    if over:
        text += "; left above the household target in taxable accounts: " + ", ".join(over)
    replans = {}
    for r, i in enumerate(rows):
        desired = np.nan_to_num(drift.value[i]).copy()
        for s, k in ctx.symbol_slots(i).items():
            desired[k] = location.desired[r, index[s]]
        replans[i] = Replan(desired, with_flow=True)
    return Decisions(
        replans=replans,
        notes=dict.fromkeys(rows, (text,)),
        methods=dict.fromkeys(rows, "household"),
    )
