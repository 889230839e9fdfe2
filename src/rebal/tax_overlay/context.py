"""What every step of a tax-aware run reads: the book, the engine's proposal and the options.

`RunContext` is built once per run and never changes: the book's per-account columns (ids,
types, households, models), the engine's proposal and the cash each account keeps, the prices
and lots of the holdings, and the wash-sale guard of each household (its own recent trades from
`--transactions`, split once so a lookup never scans the whole book's history). The steps
(`rebal.tax_overlay.households`, `wash`, `planning`, `harvesting`) take it with the decisions
of the earlier steps and return their own (`rebal.tax_overlay.decisions`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

import numpy as np
import pandas as pd

from rebal.core.engine import POLICY_NAMES, Proposal, RunConfig, kept_cents
from rebal.core.status import Status
from rebal.core.types import BoolArray, IntArray
from rebal.io.book_arrays import Book
from rebal.io.tables import Tables
from rebal.tax.rates import AccountType
from rebal.tax.wash_sales import Disposal, Transaction, WashGuard
from rebal.tax_overlay.inputs import LotIndex
from rebal.tax_overlay.settings import TaxSettings


@dataclass(frozen=True)
class RunContext:
    """The inputs of one tax-aware pass over a proposal (see the module docstring)."""

    book: Book
    proposal: Proposal
    config: RunConfig
    settings: TaxSettings
    symbols: np.ndarray  # (N, K) symbol of each slot, '' for padding
    ids: np.ndarray  # account id per row
    kind: np.ndarray  # account type per row (`AccountType` values)
    is_taxable: BoolArray
    household: np.ndarray  # household per row (the account itself when it has none)
    model: np.ndarray
    keep: IntArray  # cents each row keeps (`rebal.core.engine.kept_cents`)
    checkable: BoolArray  # rows checked, tradable and priced
    liquidation: int  # the liquidation policy's index in `proposal.policy`
    price: Mapping[str, Decimal]  # exact price per symbol, as written
    holdings: pd.DataFrame
    lots: LotIndex
    guard: WashGuard  # the whole history's guard: its identical groups, `same_security`
    guards: Mapping[str, WashGuard]  # per household with recent trades: its own trades only
    no_history: WashGuard  # the guard of a household without recent trades

    @classmethod
    def of(
        cls,
        book: Book,
        tables: Tables,
        proposal: Proposal,
        config: RunConfig,
        settings: TaxSettings,
    ) -> RunContext:
        """The context of a run over `book` (read from `tables`) and the engine's `proposal`."""
        arrays, drift, accounts = book.arrays, proposal.drift, book.accounts
        ids = accounts["account"].to_numpy()
        kind = accounts["type"].to_numpy()
        households = accounts["household"].to_numpy()
        prices = tables.prices
        guard = WashGuard.from_history(settings.transactions, settings.as_of)
        status = proposal.statuses.status
        return cls(
            book=book,
            proposal=proposal,
            config=config,
            settings=settings,
            symbols=book.symbols(),
            ids=ids,
            kind=kind,
            is_taxable=kind == AccountType.TAXABLE.value,
            household=np.where(households == "", ids, households),
            model=accounts["model"].to_numpy(),
            keep=kept_cents(arrays, drift, config.cash_reserve),
            checkable=(status > int(Status.UNABLE_TO_CHECK)) & arrays.can_trade & drift.priced,
            liquidation=POLICY_NAMES.index("liquidation"),
            price={
                s: Decimal(t) for s, t in zip(prices["symbol"], prices["price_text"], strict=True)
            },
            holdings=tables.holdings,
            lots=LotIndex(tables.holdings),
            guard=guard,
            guards=_household_guards(guard),
            no_history=replace(guard, recent_buys=(), recent_losses=()),
        )

    @property
    def used(self) -> BoolArray:
        """Slots each row uses."""
        return self.book.arrays.used

    def spendable_cents(self, i: int) -> int:
        """Cash of row `i` after its pending flow, less the cash it keeps."""
        a = self.book.arrays
        return int(a.cash_cents[i] + a.pending_cents[i] - self.keep[i])

    def symbol_slots(self, i: int) -> dict[str, int]:
        """Symbol → slot of the slots row `i` uses."""
        return {str(self.symbols[i, k]): int(k) for k in np.flatnonzero(self.used[i])}

    def guard_of(self, household: str, run_buys: tuple[Transaction, ...] = ()) -> WashGuard:
        """The wash-sale guard of one household (its own recent trades), plus `run_buys` of
        this run."""
        guard = self.guards.get(household, self.no_history)
        return replace(guard, recent_buys=guard.recent_buys + run_buys) if run_buys else guard


def _household_guards(guard: WashGuard) -> dict[str, WashGuard]:
    """`guard` split per household: each household's guard holds its own recent trades only
    (in their order), so its lookups do not scan the others'."""
    buys: dict[str, list[Transaction]] = defaultdict(list)
    losses: dict[str, list[Disposal]] = defaultdict(list)
    for b in guard.recent_buys:
        buys[b.household].append(b)
    for d in guard.recent_losses:
        losses[d.household].append(d)
    return {
        hh: replace(guard, recent_buys=tuple(buys[hh]), recent_losses=tuple(losses[hh]))
        for hh in buys.keys() | losses.keys()
    }
