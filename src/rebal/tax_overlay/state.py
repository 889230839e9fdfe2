"""The state of one tax-aware pass over a proposal, shared by its steps.

`RunState` holds two things: what the steps read (the book's per-account columns, the engine's
proposal, prices, lots, the run's wash-sale history), set once; and what the steps decide, in
a few typed fields, each written by the steps that own it:

- `desired` / `with_flow` / `method`: the rows re-planned, their desired post-trade values,
  whether their pending flow applies, and how they were planned (households, planning, wash-safe
  buys, harvesting); `rebal.tax_overlay.run.splice` turns them into orders.
- `held`: rows not rebalanced now (their orders are cleared).
- `bought` / `lost`: per household, what this run buys and sells at a loss (wash sales within
  the run; see `rebal.tax_overlay.wash`); `buyer`: the first row buying each (household, symbol).
- `pieces` / `problems`: the lots each planned sell uses and each planned row's problem, read by
  `rebal.tax_overlay.run_reports`.
- `raised`: rows whose plan raises cash owed past their tax preferences, where needed (the
  report states what was given up).
- `notes`: per row, what the account's reason should add.

The steps run in a fixed order (`rebal.tax_overlay.run.apply_tax`), so each reads what the earlier
ones decided.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from decimal import Decimal

import numpy as np

from rebal.core.engine import POLICY_NAMES, Proposal, RunConfig, kept_cents
from rebal.core.status import Status
from rebal.core.types import FloatArray
from rebal.io.book_arrays import Book
from rebal.io.tables import Tables
from rebal.tax.lots import TaxLot
from rebal.tax.plan import AccountProblem
from rebal.tax.rates import AccountType
from rebal.tax.wash_sales import Transaction, WashGuard
from rebal.tax_overlay.inputs import LotIndex
from rebal.tax_overlay.settings import TaxSettings


class RunState:
    """State of one tax-aware pass over a proposal (see the module docstring)."""

    def __init__(
        self,
        book: Book,
        tables: Tables,
        proposal: Proposal,
        config: RunConfig,
        settings: TaxSettings,
    ) -> None:
        self.book, self.proposal, self.config, self.settings = book, proposal, config, settings
        arrays, drift = book.arrays, proposal.drift
        accounts = book.accounts
        self.symbols = book.symbols()
        self.used = arrays.used
        self.ids = accounts["account"].to_numpy()
        self.kind = accounts["type"].to_numpy()
        self.is_taxable = self.kind == AccountType.TAXABLE.value
        households = accounts["household"].to_numpy()
        self.household = np.where(households == "", self.ids, households)
        self.model = accounts["model"].to_numpy()
        self.keep = kept_cents(arrays, drift, config.cash_reserve)
        prices = tables.prices
        self.price = {
            s: Decimal(t) for s, t in zip(prices["symbol"], prices["price_text"], strict=True)
        }
        self.lots = LotIndex(tables.holdings)
        self.holdings = tables.holdings
        self.guard = WashGuard.from_history(settings.transactions, settings.as_of)
        self._guards: dict[str, WashGuard] = {}
        status = proposal.statuses.status
        self.checkable = (status > int(Status.UNABLE_TO_CHECK)) & arrays.can_trade & drift.priced
        self.liquidation = POLICY_NAMES.index("liquidation")
        self.desired: dict[int, FloatArray] = {}
        self.with_flow: dict[int, bool] = {}
        self.held: set[int] = set()
        self.notes: dict[int, list[str]] = defaultdict(list)
        self.method: dict[int, str] = {}
        self.pieces: dict[tuple[int, str], list[TaxLot]] = {}
        self.problems: dict[int, AccountProblem] = {}
        self.raised: set[int] = set()
        self.bought: dict[str, set[str]] = defaultdict(set)
        self.buyer: dict[tuple[str, str], int] = {}
        self.lost: dict[str, set[str]] = defaultdict(set)
        self.in_household: set[int] = set()

    def spendable_cents(self, i: int) -> int:
        """Cash of row `i` after its pending flow, less the cash it keeps."""
        a = self.book.arrays
        return int(a.cash_cents[i] + a.pending_cents[i] - self.keep[i])

    def symbol_slots(self, i: int) -> dict[str, int]:
        """Symbol → slot of the slots row `i` uses."""
        return {str(self.symbols[i, k]): int(k) for k in np.flatnonzero(self.used[i])}

    def record_buy(self, i: int, symbol: str) -> None:
        """Row `i` buys `symbol` in this run: its household may not sell it at a loss (the
        first buyer is kept, so a blocked loss can name it)."""
        hh = str(self.household[i])
        self.bought[hh].add(symbol)
        self.buyer.setdefault((hh, symbol), i)

    def note(self, i: int, text: str) -> None:
        """Add `text` to what row `i`'s reason says."""
        self.notes[i].append(text)

    def guard_of(self, household: str, run_buys: tuple[Transaction, ...] = ()) -> WashGuard:
        """The wash-sale guard of one household (its own recent trades only, so lookups do not
        scan the whole book's history), plus `run_buys` of this run."""
        guard = self._guards.get(household)
        if guard is None:
            guard = replace(
                self.guard,
                recent_buys=tuple(b for b in self.guard.recent_buys if b.household == household),
                recent_losses=tuple(
                    d for d in self.guard.recent_losses if d.household == household
                ),
            )
            self._guards[household] = guard
        return replace(guard, recent_buys=guard.recent_buys + run_buys) if run_buys else guard
