"""How many shares a planned sell may hold, under the order rules and the run's lot method.

The planner chooses lots itself; when the run relieves lots by another method (FIFO, HIFO,
average, ...), the planned shares are trimmed so that relieving them by that method still keeps
the gain budget and the short-term switch. Pure functions of the problem and the settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_FLOOR, Decimal

from rebal.tax.lots import LotMethod, Term, holding_term, relief_order, relieve_lots
from rebal.tax.money import ZERO
from rebal.tax.plan import SHARE_STEP, AccountProblem, Position
from rebal.tax_overlay.settings import TaxSettings


def order_shares(shares: Decimal, whole_shares: bool) -> Decimal:
    """Shares rounded down to what an order may hold (whole shares with --whole-shares)."""
    step = Decimal(1) if whole_shares else SHARE_STEP
    return shares.quantize(step, rounding=ROUND_FLOOR) if step == 1 else shares


def method_quantities(
    problem: AccountProblem,
    wanted: Mapping[str, Decimal],
    settings: TaxSettings,
    whole_shares: bool,
) -> dict[str, Decimal]:
    """Per position, the planned shares trimmed so that relieving them by the run's lot
    method keeps the gain budget and the short-term switch (losing positions first)."""
    method, as_of, rates = settings.lot_method, settings.as_of, settings.rates
    by_symbol = {p.symbol: p for p in problem.positions}

    def gain(symbol: str, shares: Decimal) -> Decimal:
        p = by_symbol[symbol]
        relief = relieve_lots(p.lots, shares, method, p.price, as_of, rates=rates)
        return relief.realised_st + relief.realised_lt

    left = problem.gain_budget
    out: dict[str, Decimal] = {}
    for symbol in sorted(wanted, key=lambda s: (gain(s, wanted[s]), s)):
        p = by_symbol[symbol]
        capped = _capped(p, wanted[symbol], left, problem.short_term_gains, settings)
        shares = order_shares(capped, whole_shares)
        out[symbol] = shares
        if left is not None and shares > 0:
            left -= gain(symbol, shares)
    return out


def _capped(
    p: Position,
    wanted: Decimal,
    budget: Decimal | None,
    short_term_gains: bool,
    settings: TaxSettings,
) -> Decimal:
    """Most shares up to `wanted`, taken in lot-method order, within `budget` (net gain)
    and, when short-term gains are forbidden, before the first short-term gain lot."""
    method, as_of = settings.lot_method, settings.as_of
    order = relief_order(p.lots, method, p.price, as_of, rates=settings.rates)
    quantity = sum((lot.quantity for lot in p.lots), ZERO)
    average = sum((lot.cost_basis for lot in p.lots), ZERO) / quantity if quantity else ZERO
    taken = gained = ZERO
    for j in order:
        lot = p.lots[j]
        per_share = p.price - (average if method is LotMethod.AVERAGE else lot.cost_per_share)
        take = min(lot.quantity, wanted - taken)
        if take <= 0:
            break
        short = holding_term(lot.acquired, as_of) is Term.SHORT
        if per_share > 0 and short and not short_term_gains:
            break
        if budget is not None and per_share > 0 and gained + take * per_share > budget:
            room = ((budget - gained) / per_share).quantize(SHARE_STEP, rounding=ROUND_FLOOR)
            return taken + max(room, ZERO)
        taken += take
        gained += take * per_share
    return taken
