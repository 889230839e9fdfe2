"""Rebalancing policies: small objects that say *whether* to trade and *where to end up*.

A policy is a name and the code its compiled kernels know it by (:mod:`rebal.core.kernels`): its
trigger (``wants``) reads an account's measured drift, its destination (``destination_into``) the
drift, the frozen slots and the cash it may spend, and gives the value each position should have
after trading. It knows nothing of shares, rounding or orders: :mod:`rebal.core.trades` turns
desired values into orders for live use, and the backtest lab applies them continuously. Both
run the same kernels, inside the core's one step (:mod:`rebal.core.engine`), which is the point.

The policies:

============ ====================================================================================
full         trade every position to target whenever asked (calendar or manual rebalancing)
bands        threshold rebalancing: every position to target, only when a band is breached
rails        opportunistic (seed 001, Daryanani): on a band breach, every position above its upper
             inner rail is sold down to that rail; the proceeds plus spendable cash buy the
             positions below target in proportion to their relative distance from target, none
             past its target; cash still owed is raised from the most overweight first; a
             position still below its band is then lifted to its lower inner rail with money
             raised from the overweight positions (most overweight first, none below target)
tiered       a breach of the band trades to the inner rails, a breach of the wide band to target
cash-flow    invest deposits and raise withdrawals without otherwise trading: a deposit buys the
             most underweight first and never sells (beyond every shortfall, at target weights);
             a withdrawal sells the most overweight first (holdings outside the model are wholly
             overweight), then pro rata
liquidation  sell everything that may be sold
============ ====================================================================================

Conventions shared by every policy:

* ``post_total`` is the account's value after the pending cash flow: securities + cash + flow.
  Targets, bands and rails are all weights of it, so a deposit is invested and a withdrawal
  raised.
* ``spendable`` is cash the policy may spend: cash + flow - cash kept (the model's cash target
  or the run's reserve, whichever is larger: :mod:`rebal.core.reserve`). Negative means cash
  must be raised.
* Frozen slots (restricted securities, accounts that cannot trade) keep their value; the other
  targets share what is left in proportion to their weights.
"""

from __future__ import annotations

from dataclasses import dataclass

from rebal.core import kernels


@dataclass(frozen=True, slots=True)
class Policy:
    """A rebalancing policy: a trigger and a destination, both run by :mod:`rebal.core.kernels`."""

    name: str  # the public name, as given to ``--policy``
    code: int  # the kernels' code of the policy


FULL = Policy("full", kernels.FULL)
BANDS = Policy("bands", kernels.BANDS)
RAILS = Policy("rails", kernels.RAILS)
TIERED = Policy("tiered", kernels.TIERED)
CASH_FLOW = Policy("cash-flow", kernels.CASH_FLOW)
LIQUIDATION = Policy("liquidation", kernels.LIQUIDATION)

POLICIES: dict[str, Policy] = {
    p.name: p for p in (FULL, BANDS, RAILS, TIERED, CASH_FLOW, LIQUIDATION)
}


def policy_by_name(name: str) -> Policy:
    """Return the policy called ``name`` (full, bands, rails, tiered, cash-flow, liquidation)."""
    try:
        return POLICIES[name]
    except KeyError:
        known = ", ".join(POLICIES)
        raise ValueError(f"unknown policy {name!r}; choose one of {known}") from None
