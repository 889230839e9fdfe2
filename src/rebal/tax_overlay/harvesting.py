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
from rebal.tax.money import ZERO
from rebal.tax.rates import AccountType
from rebal.tax.wash_sales import Side, Transaction
from rebal.tax_overlay.convert import isin, piece
from rebal.tax_overlay.state import RunState
from rebal.tax_overlay.wash import record_policy_buys


def harvest(run: RunState) -> None:
    """Harvest losses in taxable accounts (positions this run does not otherwise trade)."""
    rows = _harvest_rows(run)
    if not rows:
        return
    record_policy_buys(run, rows, np.zeros(len(run.ids), dtype=bool))
    held_lots: dict[str, list[HeldLot]] = defaultdict(list)
    for i in rows:
        traded = _traded_symbols(run, i)
        for symbol, k in run.symbol_slots(i).items():
            if symbol in traded or run.book.arrays.restricted[i, k]:
                continue
            hh = str(run.household[i])
            for lot in run.lots.lots(str(run.ids[i]), symbol):
                held_lots[hh].append(HeldLot(hh, str(run.ids[i]), AccountType.TAXABLE, symbol, lot))
    row_of = {str(run.ids[i]): i for i in rows}
    s = run.settings
    for hh, lots in held_lots.items():  # wash sales are a household matter
        run_buys = tuple(_run_buy(run, hh, symbol) for symbol in sorted(run.bought[hh]))
        guard = run.guard_of(hh, run_buys)
        candidates = harvest_candidates(
            lots,
            run.price,
            s.as_of,
            s.rates,
            rules=s.harvest_rules,
            substitutes=s.substitutes,
            guard=guard,
        )
        for c in candidates:
            i = row_of[c.account]
            lost = run.lost[hh]
            if not c.actionable:
                run.note(i, c.rationale)
            elif any(guard.same_security(str(c.substitute), x) for x in lost):
                run.note(i, f"Not harvested: {c.substitute} is sold at a loss in this run")
            elif c.substitute not in run.symbol_slots(i):
                run.note(i, f"Not harvested: {c.substitute} has no price")
            else:
                _harvest_one(run, i, c)


def _run_buy(run: RunState, household: str, symbol: str) -> Transaction:
    """This run's buy of `symbol` in `household`, as the wash-sale guard reads it (named by
    the account that buys it, so a blocked harvest can say which)."""
    i = run.buyer.get((household, symbol))
    account = "(this run)" if i is None else str(run.ids[i])
    kind = AccountType.TAXABLE if i is None else AccountType(run.kind[i])
    s = run.settings
    return Transaction(
        0, s.as_of, account, household, kind, symbol, Side.BUY, Decimal(1), ZERO, RUN_BUY
    )


def _harvest_rows(run: RunState) -> list[int]:
    """Taxable, tradable accounts with a lot below the per-lot loss threshold."""
    h = run.holdings
    price = h["symbol"].map({s: float(p) for s, p in run.price.items()})
    basis = h["cost_basis_cents"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    loss = basis / 100.0 - h["quantity_micro"].to_numpy() / MICRO * price.to_numpy()
    fraction = float(run.settings.harvest_rules.min_loss_fraction)
    losing = set(h["account"][(loss > 0) & (loss >= fraction * basis / 100.0)])
    rows = (
        run.checkable
        & run.is_taxable
        & isin(run.ids, list(losing))
        & (run.proposal.policy != run.liquidation)
    )
    rows[list(run.held)] = False
    return [int(i) for i in np.flatnonzero(rows)]


def _traded_symbols(run: RunState, i: int) -> set[str]:
    """The symbols row `i` trades so far (re-planned, or by the policy's orders)."""
    if i in run.desired:
        held = np.nan_to_num(run.proposal.drift.value[i])
        moved = np.abs(run.desired[i] - held) > 0.005
    else:
        t = run.proposal.trades
        moved = (t.sell_micro[i] > 0) | (t.buy_cents[i] > 0)
    return {str(run.symbols[i, k]) for k in np.flatnonzero(moved)}


def _harvest_one(run: RunState, i: int, c: HarvestCandidate) -> None:
    """Sell candidate `c`'s losing lots in row `i` and buy its substitute with the proceeds."""
    a, drift = run.book.arrays, run.proposal.drift
    if i not in run.desired:
        run.desired[i] = np.nan_to_num(drift.value[i]).copy()
        run.with_flow[i] = bool(run.proposal.policy[i] >= 0)
        run.method[i] = "harvest"
    elif not run.method[i].endswith("harvest"):
        run.method[i] += "+harvest"
    slots = run.symbol_slots(i)
    k, s = slots[c.symbol], slots[str(c.substitute)]
    proceeds = float(c.proceeds)
    run.desired[i][k] = (a.quantity_micro[i, k] - int(c.quantity * MICRO)) / MICRO * a.price[i, k]
    run.desired[i][s] += proceeds
    by_id = {lot.lot_id: lot for lot in run.lots.lots(c.account, c.symbol)}
    run.pieces[(i, c.symbol)] = [piece(by_id[x.lot_id], x.quantity) for x in c.sales]
    run.record_buy(i, str(c.substitute))
    run.lost[c.household].add(c.symbol)
    if run.method[i] == "harvest" and run.proposal.statuses.status[i] == int(
        Status.INSIDE_TOLERANCE
    ):
        run.note(i, f"trades only to harvest a loss (inside tolerance, no breach): {c.rationale}")
    else:
        run.note(i, f"harvest: {c.rationale}")
