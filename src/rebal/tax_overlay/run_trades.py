"""What a tax-aware run buys and sells at a loss in each household, as its steps go.

A household may not sell at a loss what this run buys in it, nor buy what this run sells at a
loss (wash sales within the run; the household's earlier trades are `RunContext.guards`).
Accounts are planned in book order, so each plan sees the trades decided before it: the steps
that need them (`planning`, `harvesting`) carry a `RunTrades` forward, one `HouseholdTrades` per
household, each replaced by a new one as a decision adds to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from rebal.core.types import BoolArray
from rebal.tax_overlay.context import RunContext
from rebal.tax_overlay.convert import isin
from rebal.tax_overlay.decisions import Decisions

#: Buys of the run: (household, row, symbol).
Buy = tuple[str, int, str]


@dataclass(frozen=True)
class HouseholdTrades:
    """What this run buys (`bought`, with the first row buying each symbol, so a blocked loss
    can name it) and sells at a loss (`lost`) in one household so far."""

    bought: frozenset[str] = frozenset()
    lost: frozenset[str] = frozenset()
    buyers: Mapping[str, int] = field(default_factory=dict)

    def buying(self, row: int, symbols: Iterable[str]) -> HouseholdTrades:
        """These trades and row `row`'s buys of `symbols` (a symbol bought before keeps its
        first buyer)."""
        new = [s for s in dict.fromkeys(symbols) if s not in self.bought]
        if not new:
            return self
        buyers = {**self.buyers, **dict.fromkeys(new, row)}
        return HouseholdTrades(self.bought | set(new), self.lost, buyers)

    def losing(self, symbols: Iterable[str]) -> HouseholdTrades:
        """These trades and loss sales of `symbols`."""
        return HouseholdTrades(self.bought, self.lost | set(symbols), self.buyers)


NO_TRADES = HouseholdTrades()

#: Per household, what the run trades so far (a household not listed trades nothing yet).
RunTrades = Mapping[str, HouseholdTrades]


def with_buys(trades: RunTrades, buys: Iterable[Buy]) -> dict[str, HouseholdTrades]:
    """`trades` and `buys`, in order (the first buyer of a symbol stays its buyer)."""
    out = dict(trades)
    for hh, i, symbol in buys:
        out[hh] = out.get(hh, NO_TRADES).buying(i, (symbol,))
    return out


def policy_buys(
    ctx: RunContext, decided: Decisions, rows: list[int], replanned: BoolArray
) -> Iterator[Buy]:
    """The policy's buys in the other accounts of the households of `rows` (neither
    `replanned` nor re-planned or held in `decided`): they block loss sales there."""
    skip = replanned.copy()
    skip[[*decided.replans, *decided.held]] = True
    buyer, slot = np.nonzero(ctx.proposal.trades.buy_cents > 0)
    keep = ~skip[buyer] & isin(ctx.household[buyer], ctx.household[rows])
    for i, k in zip(buyer[keep], slot[keep], strict=True):
        yield str(ctx.household[i]), int(i), str(ctx.symbols[i, k])


def replanned_buys(ctx: RunContext, decided: Decisions) -> Iterator[Buy]:
    """The buys of the rows `decided` re-plans (desired values above their holdings)."""
    for i, replan in decided.replans.items():
        held = np.nan_to_num(ctx.proposal.drift.value[i])
        for k in np.flatnonzero(replan.desired > held + 0.005):
            yield str(ctx.household[i]), i, str(ctx.symbols[i, k])
