"""The planner of a ``harvest`` run: tax-loss harvesting on the stored book, through the tax
layer.

A harvest run trades only what harvesting decides: it runs the very tax-aware pass of
``rebal propose --tax-aware --tlh`` (:func:`rebal.tax_overlay.run_tax_aware`) on the stored book
and its lots, with the engine asked for no orders of its own (``RunConfig.trade=False``), so the
orders that come back are the harvest's alone: each losing position's loss lots sold (in shares)
and the proceeds bought in its substitute, the first wash-safe member of its group (never a wash
sale within the household, this run's other buys and sales included). The trade rules of the
run (whole shares, the minimum trade) and the cash kept still apply. Each sell carries a lot
instruction naming the lots the harvest chose (:func:`lot_instructions`), so that its fills
relieve those lots in the book and realise the loss planned.

Each account's reason says what happened: the harvest's rationale (what is sold, what it saves,
what is bought instead), that an IRA or Roth account has no loss to harvest, or that a taxable
account has nothing worth harvesting. The run's as-of date is the trade date of the holding
periods and of the wash-sale window; it is given, never read from a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from rebal.core.engine import RunConfig
from rebal.domain.book import BookSnapshot
from rebal.domain.ids import AccountId, Symbol
from rebal.domain.money import Money, Quantity
from rebal.domain.order import LotInstruction, LotPick
from rebal.domain.run import RunType
from rebal.io.book_arrays import Book
from rebal.io.tables import Tables
from rebal.proposal_output import reasons
from rebal.proposing import RunPlan, plan_of, stored_tables
from rebal.tax.harvest import HarvestRules
from rebal.tax.rates import AccountType
from rebal.tax_overlay import TaxAwareProposal, TaxSettings, run_tax_aware
from rebal.tax_overlay.inputs import LotIndex

#: How an account type is named in a reason.
_NAMES = {AccountType.IRA.value: "IRA", AccountType.ROTH.value: "Roth"}


@dataclass(frozen=True, slots=True)
class HarvestPlanner:
    """Plans a ``harvest`` run: ``config``'s trade rules and cash reserve, ``settings``' trade
    date (the run's as-of date in New York), substitutes, rates and harvesting thresholds
    (harvesting is switched on whatever ``settings.tlh`` says)."""

    config: RunConfig
    settings: TaxSettings

    def __call__(
        self, book: BookSnapshot, run_type: RunType, flows: Mapping[AccountId, Money]
    ) -> RunPlan:
        """The loss sales and substitute buys of ``book``; ``flows`` must be empty (a harvest
        run moves no cash in or out). Raises ``ValueError`` for another run type and
        :class:`rebal.errors.InputError` (a ``ValueError``) for a taxable holding that is not
        a usable lot."""
        if run_type is not RunType.HARVEST:
            raise ValueError(f"the harvest planner plans harvest runs, not {run_type} runs")
        if flows:
            raise ValueError("a harvest run moves no cash in or out")
        settings = replace(self.settings, tlh=True)
        tables = stored_tables(book)
        arrays, taxed = run_tax_aware(tables, replace(self.config, trade=False), settings)
        why = harvest_reasons(arrays, taxed, settings.harvest_rules)
        plan = plan_of(arrays, taxed.proposal, run_type, why)
        return replace(plan, lots=lot_instructions(tables, arrays, taxed))


def lot_instructions(
    tables: Tables, arrays: Book, taxed: TaxAwareProposal
) -> dict[tuple[AccountId, Symbol], LotInstruction]:
    """The lot instruction of each sell of ``taxed``: the lot parts its tax report relieves
    (the harvest's own lots), each pick naming its lot by what ``tables`` hold of it."""
    index = LotIndex(tables.holdings)
    ids = arrays.accounts["account"].to_numpy()
    out = {}
    for row, tax in taxed.accounts.items():
        account = str(ids[row])
        for symbol, sales in tax.sales.items():
            held = {lot.lot_id: lot for lot in index.lots(account, symbol)}
            picks = tuple(
                LotPick(
                    lot=s.lot_id,
                    acquired=s.acquired,
                    lot_quantity=Quantity(held[s.lot_id].quantity),
                    lot_basis=Money(held[s.lot_id].cost_basis),
                    quantity=Quantity(s.quantity),
                )
                for s in sales
            )
            if picks:
                out[(AccountId(account), Symbol(symbol))] = LotInstruction(picks)
    return out


def harvest_reasons(arrays: Book, taxed: TaxAwareProposal, rules: HarvestRules) -> list[str]:
    """Each account's reason in a harvest run: the harvest's rationale where it harvests; the
    engine's reason where the account cannot be traded or priced; else why nothing is
    harvested (under ``rules``' thresholds)."""
    engine = reasons(arrays, taxed.proposal)
    trading = taxed.proposal.trades.count > 0
    tradable = arrays.arrays.can_trade & taxed.proposal.drift.priced
    out = []
    for i, kind in enumerate(arrays.accounts["type"]):
        note = taxed.annotation(i).note
        if trading[i] and note:
            out.append(note)
        elif kind != AccountType.TAXABLE.value:
            out.append(f"not harvested: {_NAMES.get(kind, kind)} accounts realise no taxable loss")
        elif not tradable[i]:
            out.append(f"not harvested: {engine[i]}")
        else:
            out.append(
                "nothing to harvest: no position with lots at least "
                f"{(rules.min_loss_fraction * 100).normalize():f}% below their basis and "
                f"${rules.min_loss.normalize():f} below it in all that a wash-safe substitute "
                "can replace"
            )
    return out
