"""Loss harvesting in a tax-aware run (`tlh=True`, the `--tlh` step).

Taxable, tradable accounts with a lot below the loss threshold are found with one vectorised
pass over the holdings; their positions this run does not otherwise trade are offered to
`rebal.tax.harvest` household by household (wash sales are a household matter, including this
run's buys), and each actionable candidate sells its losing lots and buys its substitute.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import numpy as np

from rebal.core.status import Status
from rebal.core.trades import MICRO
from rebal.tax.harvest import RUN_BUY, HarvestCandidate, HeldLot, harvest_candidates
from rebal.tax.lots import TaxLot
from rebal.tax.money import ZERO
from rebal.tax.rates import AccountType
from rebal.tax.wash_sales import Side, Transaction
from rebal.tax_overlay.context import RunContext
from rebal.tax_overlay.convert import isin, piece
from rebal.tax_overlay.decisions import Decisions, Replan
from rebal.tax_overlay.run_trades import (
    NO_TRADES,
    HouseholdTrades,
    RunTrades,
    policy_buys,
    with_buys,
)


def harvest(ctx: RunContext, decided: Decisions, trades: RunTrades) -> Decisions:
    """Harvest losses in taxable accounts (positions the run, as `decided` so far, does not
    otherwise trade), given what it `trades` in each household so far."""
    rows = _harvest_rows(ctx, decided)
    if not rows:
        return Decisions()
    trades = with_buys(trades, policy_buys(ctx, decided, rows, np.zeros(len(ctx.ids), dtype=bool)))
    held_lots: dict[str, list[HeldLot]] = defaultdict(list)
    for i in rows:
        traded = _traded_symbols(ctx, decided, i)
        for symbol, k in ctx.symbol_slots(i).items():
            if symbol in traded or ctx.book.arrays.restricted[i, k]:
                continue
            hh = str(ctx.household[i])
            for lot in ctx.lots.lots(str(ctx.ids[i]), symbol):
                held_lots[hh].append(HeldLot(hh, str(ctx.ids[i]), AccountType.TAXABLE, symbol, lot))
    row_of = {str(ctx.ids[i]): i for i in rows}
    return Decisions.merge(  # wash sales are a household matter
        _harvest_household(ctx, decided, hh, lots, trades.get(hh, NO_TRADES), row_of)
        for hh, lots in held_lots.items()
    )


def _harvest_household(
    ctx: RunContext,
    decided: Decisions,
    hh: str,
    lots: list[HeldLot],
    trades: HouseholdTrades,
    row_of: dict[str, int],
) -> Decisions:
    """The harvests of one household's `lots`, candidate by candidate (`harvest_candidates`:
    largest saving first): each sells its lots and buys its substitute, unless this run sells
    the substitute at a loss (`trades`, and the harvests before it) or it has no price."""
    s = ctx.settings
    run_buys = tuple(
        _run_buy(ctx, hh, symbol, trades.buyers[symbol]) for symbol in sorted(trades.bought)
    )
    guard = ctx.guard_of(hh, run_buys)
    candidates = harvest_candidates(
        lots,
        ctx.price,
        s.as_of,
        s.rates,
        rules=s.harvest_rules,
        substitutes=s.substitutes,
        guard=guard,
    )
    lost = set(trades.lost)
    replans: dict[int, Replan] = {}
    methods: dict[int, str] = {}
    notes: dict[int, list[str]] = defaultdict(list)
    sold: dict[tuple[int, str], tuple[TaxLot, ...]] = {}
    for c in candidates:
        i = row_of[c.account]
        if not c.actionable:
            notes[i].append(c.rationale)
        elif any(guard.same_security(str(c.substitute), x) for x in lost):
            notes[i].append(f"Not harvested: {c.substitute} is sold at a loss in this run")
        elif c.substitute not in ctx.symbol_slots(i):
            notes[i].append(f"Not harvested: {c.substitute} has no price")
        else:
            if i not in replans:  # the row's first harvest
                replans[i], methods[i] = _before_harvest(ctx, decided, i)
            replans[i] = _harvested(ctx, i, replans[i], c)
            by_id = {lot.lot_id: lot for lot in ctx.lots.lots(c.account, c.symbol)}
            sold[(i, c.symbol)] = tuple(piece(by_id[x.lot_id], x.quantity) for x in c.sales)
            lost.add(c.symbol)
            inside = ctx.proposal.statuses.status[i] == int(Status.INSIDE_TOLERANCE)
            if methods[i] == "harvest" and inside:
                notes[i].append(
                    f"trades only to harvest a loss (inside tolerance, no breach): {c.rationale}"
                )
            else:
                notes[i].append(f"harvest: {c.rationale}")
    return Decisions(
        replans=replans,
        notes={i: tuple(texts) for i, texts in notes.items()},
        methods=methods,
        lots=sold,
    )


def _run_buy(ctx: RunContext, household: str, symbol: str, buyer: int) -> Transaction:
    """This run's buy of `symbol` in `household`, as the wash-sale guard reads it (named by
    the account of row `buyer` that buys it first, so a blocked harvest can say which)."""
    account, kind = str(ctx.ids[buyer]), AccountType(ctx.kind[buyer])
    return Transaction(
        0, ctx.settings.as_of, account, household, kind, symbol, Side.BUY, Decimal(1), ZERO, RUN_BUY
    )


def _harvest_rows(ctx: RunContext, decided: Decisions) -> list[int]:
    """Taxable, tradable accounts with a lot below the per-lot loss threshold (not held)."""
    h = ctx.holdings
    price = h["symbol"].map({s: float(p) for s, p in ctx.price.items()})
    basis = h["cost_basis_cents"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    loss = basis / 100.0 - h["quantity_micro"].to_numpy() / MICRO * price.to_numpy()
    fraction = float(ctx.settings.harvest_rules.min_loss_fraction)
    losing = set(h["account"][(loss > 0) & (loss >= fraction * basis / 100.0)])
    rows = (
        ctx.checkable
        & ctx.is_taxable
        & isin(ctx.ids, list(losing))
        & (ctx.proposal.policy != ctx.liquidation)
    )
    rows[list(decided.held)] = False
    return [int(i) for i in np.flatnonzero(rows)]


def _before_harvest(ctx: RunContext, decided: Decisions, i: int) -> tuple[Replan, str]:
    """Row `i` as `decided` before its harvests, and its method with them: its re-plan and
    ``<method>+harvest``; or, not re-planned, its values as held and ``harvest`` (its pending
    flow applies where a policy ran)."""
    earlier = decided.replans.get(i)
    if earlier is not None:
        return earlier, f"{decided.methods[i]}+harvest"
    held = np.nan_to_num(ctx.proposal.drift.value[i]).copy()
    return Replan(held, bool(ctx.proposal.policy[i] >= 0)), "harvest"


def _traded_symbols(ctx: RunContext, decided: Decisions, i: int) -> set[str]:
    """The symbols row `i` trades so far (re-planned, or by the policy's orders)."""
    replan = decided.replans.get(i)
    if replan is not None:
        moved = np.abs(replan.desired - np.nan_to_num(ctx.proposal.drift.value[i])) > 0.005
    else:
        t = ctx.proposal.trades
        moved = (t.sell_micro[i] > 0) | (t.buy_cents[i] > 0)
    return {str(ctx.symbols[i, k]) for k in np.flatnonzero(moved)}


def _harvested(ctx: RunContext, i: int, replan: Replan, c: HarvestCandidate) -> Replan:
    """`replan` of row `i` with candidate `c`'s losing lots sold and its substitute bought
    with the proceeds."""
    a = ctx.book.arrays
    slots = ctx.symbol_slots(i)
    k, s = slots[c.symbol], slots[str(c.substitute)]
    desired = replan.desired.copy()
    desired[k] = (a.quantity_micro[i, k] - int(c.quantity * MICRO)) / MICRO * a.price[i, k]
    desired[s] += float(c.proceeds)
    return Replan(desired, replan.with_flow)
